module secctx.local/escalation/bind-low

go 1.22
