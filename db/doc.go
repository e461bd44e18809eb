// Package db is stashgen's PostgreSQL store: the schema, its migrations and
// one file per table. It knows nothing about Stash.
package db
