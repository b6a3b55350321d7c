"""Generated security contexts: the oracle against the cluster on specs nobody wrote.

strategy: Hypothesis strategies over pod specs (pod and container securityContexts,
volumes, the suite's test images). outcome: what the API server and the kubelet do with
such a spec before the process runs. casefile: a generated pod as ordinary case files
(rendered, then read by secctx.cases like any hand-written one) and a finding written out
for fixtures/cases. batch: many pods on the cluster at once, judged by the oracle.
search: generation, batching and Hypothesis's shrinking of a disagreement.
"""
