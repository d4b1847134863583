"""Click commands grouped by topic; `deidcli.cli` registers them in the `deid` group."""
