"""The live embedded demo: bundled public traces shifted to the present and streamed through the ingest
path, several workloads, a GPU power domain and nodes with an event history, all decided by the control
loop in shadow mode (see docs/demo.md)."""
