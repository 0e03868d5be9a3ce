#!/usr/bin/env bash
# Installs Autobahn|Testsuite's `wstest` into interop/.cache/autobahn/ and writes the wrapper
# interop/.cache/autobahn/bin/wstest. wstest is Python 2.7 code and bookworm has no Python 2, so
# Debian bullseye's python2.7 is unpacked into a private prefix: the system's apt sources, dpkg
# database and Python stay untouched. Re-running is a no-op until this file changes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=$(cd "$here/.." && pwd)/.cache/autobahn
log() { echo "autobahn-install: $*"; }

# The stamp holds this script's hash, so editing a pin below forces a clean reinstall.
want=$(sha256sum "$here/install.sh" | cut -d' ' -f1)
if [[ -x $dest/bin/wstest && -f $dest/.stamp && $(<"$dest/.stamp") == "$want" ]]; then
  log "up to date: $dest/bin/wstest"
  exit 0
fi

debs=(python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib libpython2.7
      libpython2.7-dev libssl1.1 libffi7)
boot=(pip==20.3.4 setuptools==44.0.0 wheel==0.37.1)
# Last releases that still support Python 2.7; pinned in full so that pip never picks a newer,
# py3-only release of a dependency.
pins=(autobahntestsuite==25.10.1 autobahn==0.10.9 Twisted==19.10.0 txaio==2.1.0
      incremental==16.10.1 pyOpenSSL==19.1.0 cryptography==3.3.2 zope.interface==4.6.0
      Jinja2==2.11.3 MarkupSafe==1.1.1 Werkzeug==1.0.1 klein==17.10.0 service-identity==18.1.0
      unittest2==1.1.0 six==1.16.0 wsaccel==0.6.6 ujson==2.0.3 attrs==21.4.0 Automat==22.10.0
      cffi==1.15.1 constantly==15.1.0 enum34==1.1.10 hyperlink==21.0.0 idna==2.10
      ipaddress==1.0.23 linecache2==1.0.0 traceback2==1.4.0 pyasn1==0.5.1 pyasn1-modules==0.3.0
      pycparser==2.21 PyHamcrest==1.10.1 typing==3.10.0.0)

# Host tools: python3's pip fetches the py2 pip wheel, a C compiler builds wsaccel.
need=()
command -v python3 >/dev/null || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v cc >/dev/null || need+=(gcc libc6-dev)
if ((${#need[@]})); then
  log "installing host packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Prints the URI of the first enabled "deb" source for this release's main archive, from either
# the one-line (.list) or the deb822 (.sources) format.
find_mirror() {
  python3 - <<'EOF'
import glob, re
release = dict(l.strip().split("=", 1) for l in open("/etc/os-release") if "=" in l)
codename = release.get("VERSION_CODENAME", "").strip('"')
def entries(path):
    text = open(path).read()
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields, key = {}, None
            for line in stanza.splitlines():
                if line.startswith("#"):
                    continue
                if line[:1].isspace() and key:
                    fields[key] += line.split()
                elif ":" in line:
                    key, value = line.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"])[0] != "no":
                for uri in fields.get("uris", []):
                    yield uri, fields.get("suites", []), fields.get("components", [])
    else:
        for line in text.splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+([^#]*)", line)
            if m:
                yield m.group(1), [m.group(2)], m.group(3).split()
paths = (glob.glob("/etc/apt/sources.list") + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
         + sorted(glob.glob("/etc/apt/sources.list.d/*.sources")))
for path in paths:
    for uri, suites, components in entries(path):
        if codename in suites and "main" in components and re.match(r"https?://", uri):
            print(uri.rstrip("/"))
            raise SystemExit(0)
raise SystemExit(1)
EOF
}
# Use the Debian mirror this machine's apt already uses (it may be a local mirror or snapshot).
mirror=${SOCKEYE_DEBIAN_MIRROR:-$(find_mirror)} || {
  log "no Debian mirror found in /etc/apt/sources.list*; set SOCKEYE_DEBIAN_MIRROR"; exit 1; }

rm -rf "$dest"
mkdir -p "$dest"/{apt/lists/partial,apt/cache/archives/partial,debs,wheels,root,bin}
log "fetching python2.7 from $mirror bullseye"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bullseye main" \
  >"$dest/apt/sources.list"
: >"$dest/apt/status"
apt_opts=(
  -o "Dir::Etc::sourcelist=$dest/apt/sources.list" -o Dir::Etc::sourceparts=-
  -o "Dir::State::Lists=$dest/apt/lists" -o "Dir::Cache=$dest/apt/cache"
  -o "Dir::State::status=$dest/apt/status"
  -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
  # _apt cannot always read a work tree; the download is signature-checked either way.
  -o APT::Sandbox::User=root
)
apt-get "${apt_opts[@]}" -qq update
(cd "$dest/debs" && apt-get "${apt_opts[@]}" -qq download "${debs[@]}")
for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$dest/root"; done

py=$dest/root/usr/bin/python2.7
libdir=$(echo "$dest"/root/usr/lib/*-linux-gnu)
export LD_LIBRARY_PATH=$libdir PYTHONNOUSERSITE=1
unset PYTHONPATH PYTHONHOME
"$py" -c 'import ssl, zlib, ctypes'  # fails fast if a shared library is missing

log "installing pip for python2.7"
python3 -m pip download -q --no-deps --python-version 2.7 --only-binary=:all: \
  -d "$dest/wheels" "${boot[@]}"
# pip runs straight from its wheel to install itself; setuptools/wheel must match py2's era.
"$py" "$dest/wheels/pip-20.3.4-py2.py3-none-any.whl/pip" install -qq --no-warn-script-location \
  --no-index --find-links "$dest/wheels" "${boot[@]}"

log "installing autobahntestsuite and dependencies"
# Debian's Python.h includes <x86_64-linux-gnu/python2.7/pyconfig.h>, hence both -I paths.
CFLAGS="-I$dest/root/usr/include -I$dest/root/usr/include/python2.7" \
  "$py" -m pip install -qq --no-warn-script-location --cache-dir "$dest/pip-cache" "${pins[@]}"

# fuzzingserver listens on all interfaces; the tests only ever need loopback.
fuzzing=$("$py" -c 'import autobahntestsuite.fuzzing as m; print(m.__file__.rstrip("c"))')
"$py" - "$fuzzing" <<'EOF'
import sys
path = sys.argv[1]
src = open(path).read()
for old, new in [
    ("listenWS(factory, sslContext)", "listenWS(factory, sslContext, interface='127.0.0.1')"),
    ("reactor.listenSSL(webport, web, sslContext)",
     "reactor.listenSSL(webport, web, sslContext, interface='127.0.0.1')"),
    ("reactor.listenTCP(webport, web)", "reactor.listenTCP(webport, web, interface='127.0.0.1')"),
]:
    assert src.count(old) == 1, "cannot patch %s: %r" % (path, old)
    src = src.replace(old, new)
open(path, "w").write(src)
EOF
rm -f "${fuzzing}c"  # a .pyc written in the same second would hide the patch

# Paths are resolved at run time so the cache survives being moved.
cat >"$dest/bin/wstest" <<EOF
#!/usr/bin/env bash
root=\$(cd "\$(dirname "\${BASH_SOURCE[0]}")/../root" && pwd)
export LD_LIBRARY_PATH=\$root/usr/lib/$(basename "$libdir") PYTHONNOUSERSITE=1
unset PYTHONPATH PYTHONHOME
exec "\$root/usr/bin/python2.7" -c 'import sys; sys.argv[0] = "wstest"; from autobahntestsuite.wstest import run; sys.exit(run())' "\$@"
EOF
chmod +x "$dest/bin/wstest"
"$dest/bin/wstest" --autobahnversion >/dev/null

rm -rf "$dest/apt" "$dest/debs" "$dest/wheels" "$dest/pip-cache"
echo "$want" >"$dest/.stamp"
log "installed $dest/bin/wstest"
