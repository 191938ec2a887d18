// Package tieredtest runs the store conformance suite and the write-back
// tests on the tiered backend: a redis-server of its own in front of a
// database of its own on the machine's MariaDB.
package tieredtest
