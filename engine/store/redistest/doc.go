// Package redistest runs the store conformance suite and the fault tests on
// the Redis backend, each against a redis-server of its own. It is a package
// of its own so that its slow tests run beside the other backends'.
package redistest
