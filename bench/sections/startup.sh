# Startup of the compiled binary against /bin/true and runc --version.
startup() {
  "${H[@]}" --export-markdown "$OUT/startup.md" --export-json "$OUT/startup.json" \
    -n 'gpuguard version' './dist/gpuguard version' \
    -n '/bin/true' '/bin/true' \
    -n 'runc --version' "$(command -v runc) --version"
}
