// Package stash speaks to a Stash server: GraphQL at <url>/graphql for jobs,
// scenes and markers, the same URL over a websocket for its job and log
// subscriptions, and plain HTTP GETs to probe the generated files Stash
// serves. It knows nothing about the database or about scheduling decisions.
package stash
