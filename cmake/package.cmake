# `cpack -G DEB` in the build directory: a Debian package of what
# install.cmake installs, under /usr (so /etc/chatra-bridge and
# /lib/systemd/system: install_etc.cmake), with the maintainer scripts and
# conffiles of packaging/debian/.  README, "Install".

# One version: the one the binary prints (cli/cli.h).
file(STRINGS cli/cli.h BR_VERSION_LINE REGEX "^#define BR_VERSION \"")
string(REGEX REPLACE ".*\"(.*)\".*" "\\1" BR_VERSION "${BR_VERSION_LINE}")

set(BR_PACKAGE_MAINTAINER "chatra-bridge maintainers <root@localhost>" CACHE STRING
    "The Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME chatra-bridge)
set(CPACK_PACKAGE_VERSION ${BR_VERSION})
set(CPACK_PACKAGE_CONTACT "${BR_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "connects the Chatra live chat to Planfix or Redmine")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "A self-hosted, crash-safe daemon: a visitor's chat becomes a task and its
comments, an employee's answer in the tracker reaches the chat.  Runs as the
systemd service chatra-bridge; configured in /etc/chatra-bridge/.")
# The install runs with the prefix /usr (whatever the build's own prefix)
# and the package's root as DESTDIR, so that install_etc.cmake sees /usr
# and puts the config in /etc.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

# The libraries the binary links, found by dpkg-shlibdeps when it is there
# (dpkg-dev), else named.  Never found that way: libwebsockets loads its
# libuv event loop as a plugin; tzdata holds the time zones; adduser makes
# the service's user.
find_program(BR_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(BR_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libwebsockets-evlib-uv, tzdata, adduser")
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "libuv1, libwebsockets17, libwebsockets-evlib-uv, libcurl4, libjansson4, libsqlite3-0, libxml2, libunistring2, tzdata, adduser")
endif()

set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
