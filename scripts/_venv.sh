# Sourced by scripts/demo, scripts/test and scripts/bench: find Python >= 3.12 and make sure
# .venv exists and has this checkout installed (pip install -e .[dev]), quickly when nothing
# changed. Not meant to be run on its own.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.geoportal-installed"

# Prints "major minor" of a Python command, or nothing if it does not run.
_py_version() {
  "$1" -c 'import sys; print(sys.version_info[0], sys.version_info[1])' 2>/dev/null
}

# The newest Python >= 3.12: plain commands first (each checked by running it), then pyenv's
# installed versions. Prints its path, or nothing.
find_python() {
  local best="" best_minor=0 cand ver major minor root
  local cands=(python3.14 python3.13 python3.12 python3 python)
  if command -v pyenv >/dev/null 2>&1 || [ -d "${PYENV_ROOT:-$HOME/.pyenv}" ]; then
    root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
    for cand in "$root"/versions/3.*/bin/python3; do
      [ -x "$cand" ] && cands+=("$cand")
    done
  fi
  for cand in "${cands[@]}"; do
    ver="$(_py_version "$cand")" || continue
    [ -n "$ver" ] || continue
    read -r major minor <<<"$ver"
    if [ "$major" -eq 3 ] && [ "$minor" -ge 12 ] && [ "$minor" -gt "$best_minor" ]; then
      best="$(command -v "$cand" || echo "$cand")"
      best_minor="$minor"
    fi
  done
  if [ -n "$best" ]; then
    echo "$best"
  fi
}

ensure_venv() {
  local py want ver
  if [ -x "$VENV/bin/python" ]; then
    ver="$(_py_version "$VENV/bin/python")"
    if [ -z "$ver" ] || [ "${ver#* }" -lt 12 ]; then
      echo "Existing .venv is broken or older than Python 3.12: recreating it." >&2
      rm -rf "$VENV"
    fi
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    py="$(find_python)"
    if [ -z "$py" ]; then
      echo "geoportal needs Python >= 3.12 and none was found (tried python3.14 … python3," >&2
      echo "python, and pyenv's versions). Install Python 3.12 or newer and run this again." >&2
      exit 1
    fi
    echo "Creating .venv with $py ($("$py" --version 2>&1))" >&2
    "$py" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  fi
  want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ] || \
     ! "$VENV/bin/python" -c 'import geoportal' >/dev/null 2>&1; then
    echo "Installing geoportal and its dependencies into .venv …" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]" >&2
    echo "$want" >"$STAMP"
  fi
}

# Map labels are Chinese: the renderer needs a CJK font (Noto Sans CJK TC, Debian's
# fonts-noto-cjk) or labels draw as boxes. Install it as root with apt when it is missing;
# otherwise say so and go on (maps still draw, labels fall back to DejaVu).
ensure_cjk_font() {
  [ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing the CJK font for map labels (fonts-noto-cjk)" >&2
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk ||
           { apt-get update -qq &&
             DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk; }; } >&2
    then
      echo "note: installing fonts-noto-cjk failed; Chinese labels will not render." >&2
    fi
  else
    echo "note: fonts-noto-cjk is not installed and this is not root with apt-get;" >&2
    echo "      Chinese map labels will not render (install fonts-noto-cjk)." >&2
  fi
}

# The browser tests (tests/portal/test_web_*.py) drive Debian's Chromium with Playwright for
# Python; Playwright's own browser download is never used. Install it as root with apt when it
# is missing; otherwise say so and go on (the browser tests then skip, saying why).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Chromium for the browser tests (chromium)" >&2
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ||
           { apt-get update -qq &&
             DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }; } >&2
    then
      echo "note: installing chromium failed; the browser tests will be skipped." >&2
    fi
  else
    echo "note: /usr/bin/chromium is missing and this is not root with apt-get;" >&2
    echo "      the browser tests will be skipped (install Debian's chromium)." >&2
  fi
}
