"""The small pieces every phase uses: capabilities, data paths, the cache, report
categories, named timeouts, pod-spec access, error types, exit codes."""
