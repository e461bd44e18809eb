// Package cycle decides what one stashgen run does: check, generate,
// monitor, verify. It sees Stash and the database through small interfaces
// declared here, so its decisions can be tested without either.
package cycle
