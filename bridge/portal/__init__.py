"""The administration portal: server-rendered HTML pages on the bridge's HTTP listener."""
