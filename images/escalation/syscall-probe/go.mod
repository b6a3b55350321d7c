module secctx.local/escalation/syscall-probe

go 1.22
