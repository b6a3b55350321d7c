module secctx.local/pause

go 1.22
