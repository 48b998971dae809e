# What `cmake --install` puts where (README, "Install").  Paths under the
# prefix come from GNUInstallDirs: bin/chatra-bridge,
# share/chatra-bridge/templates/<language>/ (which the binary finds from its
# own path: bridge/install_dir.c), share/doc/chatra-bridge/README.md.  The
# config, the secrets file and the systemd unit depend on the prefix the
# install is run with, so install_etc.cmake places them at install time.

install(TARGETS chatra-bridge RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY templates/ DESTINATION ${CMAKE_INSTALL_DATADIR}/chatra-bridge/templates
        FILES_MATCHING PATTERN "*.txt" PATTERN "*.html" PATTERN "*.textile")
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

install(CODE "
  set(BR_PACKAGING_DIR \"${CMAKE_SOURCE_DIR}/packaging\")
  set(BR_STAGE_DIR \"${CMAKE_BINARY_DIR}/packaging\")
  set(BR_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(BR_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
")
install(SCRIPT cmake/install_etc.cmake)
