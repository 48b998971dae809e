# Runs at install time (from install.cmake), once the prefix is known:
# `cmake --install --prefix P` and CPack choose it only then.  Under /usr
# (the Debian package) the config goes to /etc/chatra-bridge and the unit
# to /lib/systemd/system, where Debian's own packages put theirs; under any
# other prefix P, to P/etc/chatra-bridge and P/lib/systemd/system (systemd
# also reads /usr/local/lib/systemd/system).
#
# The unit is written with this install's paths.  An existing bridge.json
# or env is the admin's: kept, never overwritten (the Debian package has
# dpkg's conffile handling for that instead).

set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
  set(etc "/etc")
  set(unitdir "/lib/systemd/system")
else()
  set(etc "${prefix}/etc")
  set(unitdir "${prefix}/lib/systemd/system")
endif()

# The unit's @VARIABLES@.
set(BINDIR "${prefix}/${BR_BINDIR}")
set(DOCDIR "${prefix}/${BR_DOCDIR}")
set(SYSCONFDIR "${etc}")
file(READ "${BR_PACKAGING_DIR}/chatra-bridge.service.in" unit)
string(CONFIGURE "${unit}" unit @ONLY)
# Written first in the build tree, in a directory of this destination's own:
# two installs at once (the tests, CPack) do not share it.
string(MD5 stage "$ENV{DESTDIR}${prefix}")
set(stage "${BR_STAGE_DIR}/${stage}")
file(WRITE "${stage}/chatra-bridge.service" "${unit}")
file(INSTALL "${stage}/chatra-bridge.service" DESTINATION "${unitdir}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(REMOVE_RECURSE "${stage}")

# An admin's file stays as it is.
function(install_conffile name)
  if(EXISTS "$ENV{DESTDIR}${etc}/chatra-bridge/${name}")
    message(STATUS "Kept: $ENV{DESTDIR}${etc}/chatra-bridge/${name} (yours)")
  else()
    file(INSTALL "${BR_PACKAGING_DIR}/${name}" DESTINATION "${etc}/chatra-bridge" FILE_PERMISSIONS ${ARGN})
  endif()
endfunction()

# bridge.json holds no secrets ("env:" values): readable by the service's
# user.  env holds them: root's alone (systemd reads it before starting).
install_conffile(bridge.json OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install_conffile(env OWNER_READ OWNER_WRITE)
