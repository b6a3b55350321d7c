"""Sources of the suite's own images (Go programs, configs); installed as
`secctx.image_sources` (data only), read by secctx.images.build."""
