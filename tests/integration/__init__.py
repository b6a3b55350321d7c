"""End-to-end tests of the suite itself (bad input, clean-up, existing clusters) on
the kind cluster `secctx-robust`; a package so that the cluster lives exactly as
long as these tests (conftest.robust, scope="package")."""
