package stashtest

import (
	"net/http"
	"testing"
)

// The order log: one counter over calls, upgrades and subscriptions, so a
// test can tell which came first where the fake clock cannot.
func TestLog_SeqOrdersCallsUpgradesAndSubscriptions(t *testing.T) {
	t.Parallel()
	s := New(t, WithAPIKey("k"))
	c := newClient(t, s)
	first := s.Seq()
	c.ok(`{ version { hash } }`, nil)
	w := mustDialWS(t, s, ProtoTransportWS)
	w.init()
	sub := w.start(jobsQ)
	w.sync()
	c.ok(`{ version { hash } }`, nil)

	calls, ups, subs := s.Calls(), s.Upgrades(), s.Subscriptions()
	if len(calls) != 2 || len(ups) != 1 || len(subs) != 2 {
		t.Fatalf("calls %d, upgrades %d, subscriptions %d", len(calls), len(ups), len(subs))
	}
	if subs[0].ID != sub {
		t.Fatalf("first operation on the socket is %q, want the subscription %q", subs[0].ID, sub)
	}
	got := []int64{calls[0].Seq, ups[0].Seq, subs[0].Seq, subs[1].Seq, calls[1].Seq}
	for i, seq := range got {
		if seq != first+int64(i) {
			t.Fatalf("seqs %v, want %d, %d, ... in the order things happened", got, first, first+1)
		}
	}
	if next := s.Seq(); next != first+int64(len(got)) {
		t.Fatalf("Seq() = %d after %d records from %d", next, len(got), first)
	}
}

// DropSockets cuts what is open, as a dying proxy does, and leaves Stash up
// for the next connection.
func TestWebsocket_DropSockets(t *testing.T) {
	t.Parallel()
	s := New(t, WithAPIKey("k"))
	w1, _ := subscribed(t, s, jobsQ, ProtoTransportWS)
	w2, _ := subscribed(t, s, logsQ, ProtoGraphQLWS)

	if n := s.DropSockets(); n != 2 {
		t.Fatalf("DropSockets cut %d sockets, want 2", n)
	}
	w1.expectClose(-1) // no close frame: the connection is gone
	w2.expectClose(-1)
	if err := s.AwaitWebsockets(ctxT(t), 0); err != nil {
		t.Fatal(err)
	}
	if n := s.DropSockets(); n != 0 {
		t.Fatalf("DropSockets with none open cut %d", n)
	}

	// A new socket subscribes and hears the next job; the dropped
	// subscriptions hear nothing more.
	w3, sub := subscribed(t, s, jobsQ, ProtoTransportWS)
	s.AddScenes(1)
	id := newClient(t, s).generate(map[string]any{"covers": true})
	if e := w3.jobEvent(sub); e.Type != "ADD" || e.ID != id {
		t.Fatalf("after reconnecting: %+v, want ADD of job %s", e, id)
	}
}

// A fault with Path "/graphql" meets websocket upgrades, not GraphQL
// requests: a proxy answering 500, and an upgrade held until released.
func TestWebsocket_UpgradeFaults(t *testing.T) {
	t.Parallel()
	s := New(t, WithAPIKey("k"))
	s.InjectFault(Fault{Kind: FaultStatus500, Path: "/graphql", Times: 1})
	newClient(t, s).ok(`{ version { hash } }`, nil) // not an upgrade: untouched
	_, resp, err := dialWS(t, s, "k", ProtoTransportWS)
	if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("dial: %v, response %v, want 500", err, resp)
	}
	mustDialWS(t, s, ProtoTransportWS) // Times: 1

	s.InjectFault(Fault{Kind: FaultHang, Path: "/graphql", Times: 1})
	dialed := make(chan error, 1)
	go func() {
		_, _, err := dialWS(t, s, "k", ProtoTransportWS)
		dialed <- err
	}()
	select {
	case <-s.HangStarted():
	case err := <-dialed:
		t.Fatalf("the held upgrade answered: %v", err)
	}
	s.ReleaseHung()
	if err := <-dialed; err != nil {
		t.Fatalf("released upgrade: %v", err)
	}
	ups := s.Upgrades()
	want := []int{http.StatusInternalServerError, http.StatusSwitchingProtocols, http.StatusSwitchingProtocols}
	if len(ups) != len(want) {
		t.Fatalf("upgrades %+v", ups)
	}
	for i, u := range ups {
		if u.Status != want[i] {
			t.Errorf("upgrade %d status %d, want %d", i, u.Status, want[i])
		}
	}
}
