module secctx.local/escalation/suid-id

go 1.22
