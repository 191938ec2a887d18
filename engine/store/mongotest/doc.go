// Package mongotest runs the store conformance suite on the MongoDB backend:
// against MOONFORGE_MONGO_URL when set, else against a FerretDB of its own
// on the machine's PostgreSQL.
package mongotest
