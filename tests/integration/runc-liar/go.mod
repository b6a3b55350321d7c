module secctx.local/runc-liar

go 1.22
