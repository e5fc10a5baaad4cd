"""The benchmarks' one harness: studies as data (spec), one record per run (store), training
through the library's loop (train), reports from the records (report, outputs) and one command
line (cli: `python -m benchmarks.harness`)."""
