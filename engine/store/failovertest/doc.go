// Package failovertest checks the Redis store across Redis' own faults,
// under a write load, on servers the tests start: a Sentinel failover (kill
// -9 of the master), slots of a Redis Cluster moved between masters, and a
// Cluster master's failover. It is a package of its own because its tests
// wait for failure detection (seconds each).
package failovertest
