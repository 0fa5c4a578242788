#!/usr/bin/env bash
# Build the ROS interface packages under interfaces/ into the project venv, for the ones the
# venv cannot import. tf2_msgs (/tf, /tf_static) is not on PyPI; the rosidl generators and
# ament_cmake are (requirements-build.txt), and Debian's cmake and gcc compile the result.
#
#   tools/build_interfaces.sh [VENV]      (default .venv; `make venv` runs it)
#
# Idempotent: a package whose Python module already imports is skipped (a ROS installation or an
# earlier build provides it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(realpath "${1:-.venv}")
PY="$VENV/bin/python"
PACKAGES=(tf2_msgs)

missing=()
for pkg in "${PACKAGES[@]}"; do
  "$PY" -c "import $pkg.msg" 2>/dev/null || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

for tool in cmake gcc g++; do
  command -v "$tool" >/dev/null || { echo "build_interfaces: $tool is missing (apt-get install -y cmake gcc g++)" >&2; exit 1; }
done

"$PY" -m pip install --quiet -r requirements-build.txt

# The ROS wheels are built on manylinux: their exported CMake targets name that image's Python and
# numpy include directories, which do not exist here; CMake refuses a target with a missing path.
py_include=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
np_include=$("$PY" -c "import numpy; print(numpy.get_include())")
grep -rlF /opt/python/cp311-cp311/ "$VENV"/share/*/cmake/ --include='*.cmake' 2>/dev/null | while read -r file; do
  sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_include#g" \
         -e "s#/opt/python/cp311-cp311/include/python3.11#$py_include#g" "$file"
done

export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
build_root=$(mktemp -d)
trap 'rm -rf "$build_root"' EXIT
for pkg in "${missing[@]}"; do
  echo "build_interfaces: building $pkg into $VENV"
  cmake -S "interfaces/$pkg" -B "$build_root/$pkg" -DCMAKE_INSTALL_PREFIX="$VENV" \
        -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build_root/$pkg.log" 2>&1 \
    || { cat "$build_root/$pkg.log" >&2; exit 1; }
  cmake --build "$build_root/$pkg" -j "$(nproc)" >>"$build_root/$pkg.log" 2>&1 || { tail -50 "$build_root/$pkg.log" >&2; exit 1; }
  cmake --install "$build_root/$pkg" >>"$build_root/$pkg.log" 2>&1 || { tail -50 "$build_root/$pkg.log" >&2; exit 1; }
  "$PY" -c "import $pkg.msg" || { echo "build_interfaces: $pkg built but does not import" >&2; exit 1; }
done
