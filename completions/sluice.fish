complete --keep-order --exclusive --command sluice --arguments "(COMPLETE=fish sluice -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
