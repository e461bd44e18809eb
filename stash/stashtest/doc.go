// Package stashtest is a fake Stash server for tests: the only Stash our
// client ever meets before production, so it is deliberately strict.
//
// Every GraphQL request is parsed and validated against a hand-written subset
// of Stash's schema (schema.graphql), and the HTTP behaviour copies what a
// real Stash does: 422 for invalid queries, 401 with a non-JSON body without
// the API key, a single job queue that runs one job at a time, a graveyard of
// the last ten ended jobs, generated files served (or not) with Stash's status
// codes and bodies, and timestamps in a non-UTC zone.
//
// It imports nothing from package stash, not even the LogLevel enum both
// spell: its types are written from Stash's, so a mistake in the client's
// idea of Stash is not copied into the fake that tests it.
//
// Subscriptions are served on /graphql over a websocket in both protocols
// Stash's gqlgen speaks (graphql-transport-ws, and graphql-ws for a client
// that asks for none), with the key checked at the upgrade only.
// jobsSubscribe pushes ADD, UPDATE and REMOVE where Stash's job manager does;
// loggingSubscribe pushes the fake's own log (generate failures worded as
// Stash words them) in batches at most once a second.
//
// By default nothing runs on its own: jobs advance one tick each time
// findJob asks about the running job or the test calls Tick (WithAutoTick
// makes them run in real time instead), and time moves only when the test
// moves the fake clock. Tests script faults (5xx, HTML, truncated or huge
// bodies, hangs, dropped connections, a server that is down, a proxy that
// refuses or holds upgrades, websockets cut mid-run) and read back a log of
// every request to assert what the client did, or did not, send; one
// sequence number orders GraphQL calls, upgrades and subscriptions, for
// tests about which came first.
package stashtest
