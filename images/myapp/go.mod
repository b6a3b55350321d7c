module secctx.local/myapp

go 1.22
