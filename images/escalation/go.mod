module secctx.local/escalation

go 1.22
