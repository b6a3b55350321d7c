module secctx.local/escalation/setfcap

go 1.22
