module secctx.local/capshim

go 1.22
