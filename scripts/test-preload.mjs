// Loaded into the test runner and each test file's process (`--import`). Under
// `--test-force-exit` a test file's process exits as soon as its last test ends, and on Linux its
// stdout (the pipe its verdicts travel to the runner on) is non-blocking, so the exit could cut off
// verdicts still buffered: the runner then reported fewer tests than ran, and a failure's name and
// error could vanish (nodejs/node#64833). Blocking writes on that pipe leave nothing buffered.
if (process.stdout._handle && typeof process.stdout._handle.setBlocking === "function") {
  process.stdout._handle.setBlocking(true);
}
