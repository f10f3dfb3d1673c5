#!/usr/bin/env bash
# Refresh the API documentation assets served by /docs and /redoc (app/static/vendor/): Swagger UI
# from the npm package swagger-ui-dist and ReDoc from the npm package redoc, with their licences; and
# the QR decoder of the counter's camera button (the npm package @zxing/library, UMD build).
# City networks have no internet, so the pages never load anything from a CDN.
#   bash scripts/vendor-docs.sh                      # the versions in app/static/vendor/VERSIONS
#   SWAGGER_UI=5.35.0 REDOC=2.5.4 bash scripts/vendor-docs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENDOR=app/static/vendor
# shellcheck disable=SC1091
source "$VENDOR/VERSIONS"
SWAGGER_UI=${SWAGGER_UI:-$swagger_ui_dist}
REDOC=${REDOC:-$redoc}
ZXING=${ZXING:-$zxing_library}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$SWAGGER_UI" "redoc@$REDOC" "@zxing/library@$ZXING" >/dev/null)
mkdir -p "$work/s" "$work/r" "$work/z"
tar -xzf "$work/zxing-library-$ZXING.tgz" -C "$work/z"
tar -xzf "$work/swagger-ui-dist-$SWAGGER_UI.tgz" -C "$work/s"
tar -xzf "$work/redoc-$REDOC.tgz" -C "$work/r"
rm -rf "$VENDOR/swagger-ui" "$VENDOR/redoc" "$VENDOR/zxing"
mkdir -p "$VENDOR/swagger-ui" "$VENDOR/redoc" "$VENDOR/zxing"
for f in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE favicon-32x32.png; do
  cp "$work/s/package/$f" "$VENDOR/swagger-ui/"
done
cp "$work/r/package/bundles/redoc.standalone.js" "$work/r/package/bundles/redoc.standalone.js.LICENSE.txt" "$VENDOR/redoc/"
cp "$work/r/package/LICENSE" "$VENDOR/redoc/LICENSE"
cp "$work/z/package/umd/index.min.js" "$VENDOR/zxing/zxing-library.min.js"
cp "$work/z/package/LICENSE" "$VENDOR/zxing/LICENSE"
# The source maps are not shipped: drop the references so browsers do not ask for them.
sed -i '/^\/\/# sourceMappingURL=/d' "$VENDOR/swagger-ui/swagger-ui-bundle.js" "$VENDOR/redoc/redoc.standalone.js" \
  "$VENDOR/zxing/zxing-library.min.js"
sed -i 's#/\*\# sourceMappingURL=swagger-ui.css.map\*/##' "$VENDOR/swagger-ui/swagger-ui.css"
printf 'swagger_ui_dist=%s\nredoc=%s\nzxing_library=%s\n' "$SWAGGER_UI" "$REDOC" "$ZXING" > "$VENDOR/VERSIONS"
echo "vendored swagger-ui-dist $SWAGGER_UI, redoc $REDOC and @zxing/library $ZXING into $VENDOR"
