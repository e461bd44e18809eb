// Command pgcount is a PostgreSQL proxy that counts the SQL statements its
// clients execute, for measuring what one stashgen run costs the database.
//
// It reads the client side of the wire protocol and writes one line per
// statement executed to the -log file: "simple\t<sql>" for a simple-protocol
// Query message, "exec\t<sql>" for an extended-protocol Execute (the SQL of
// the prepared statement it runs), and "prepare\t<sql>" for a Parse (pgx
// prepares each distinct statement once per connection; a prepare is a round
// trip, not an execution). Server answers pass through untouched.
//
// The count is exact and per process, which server-side statistics are not:
// pg_stat_statements needs shared_preload_libraries (a restart), and
// pg_stat_database counts every client of the server. Clients must connect
// with sslmode=disable: a TLS stream cannot be read.
//
//	pgcount -listen 127.0.0.1:6543 -upstream 127.0.0.1:5432 -log /tmp/sql.log
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6543", "address to accept clients on")
	upstream := flag.String("upstream", "127.0.0.1:5432", "PostgreSQL server")
	logPath := flag.String("log", "pgcount.log", "file that gets one line per statement (opened for append, so it may be truncated between runs)")
	flag.Parse()
	f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgcount: error: %v\n", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgcount: error: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening=%s\n", ln.Addr())
	lg := &logger{w: f}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgcount: accept: %v\n", err)
			os.Exit(1)
		}
		go serve(c, *upstream, lg)
	}
}

type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) line(kind, sql string) {
	sql = strings.Join(strings.Fields(sql), " ")
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s\t%s\n", kind, sql)
}

func serve(client net.Conn, upstream string, lg *logger) {
	defer client.Close()
	server, err := net.Dial("tcp", upstream)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgcount: dial %s: %v\n", upstream, err)
		return
	}
	defer server.Close()
	go func() {
		_, _ = io.Copy(client, server)
		client.Close()
	}()
	r := bufio.NewReader(io.TeeReader(client, server))
	if err := readClient(r, lg); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(os.Stderr, "pgcount: %v\n", err)
	}
	// Drain whatever is left so the tee keeps forwarding.
	_, _ = io.Copy(io.Discard, r)
}

const (
	sslRequest    = 80877103
	gssRequest    = 80877104
	cancelRequest = 80877102
)

// readClient parses the frontend messages: startup packets first (no type
// byte), then typed messages.
func readClient(r *bufio.Reader, lg *logger) error {
startup:
	for {
		body, err := untyped(r)
		if err != nil {
			return err
		}
		if len(body) < 4 {
			return errors.New("short startup packet")
		}
		switch binary.BigEndian.Uint32(body) {
		case sslRequest, gssRequest:
			continue // the server answers N (sslmode=disable), then a real startup follows
		case cancelRequest:
			return nil
		}
		break startup
	}
	stmts := map[string]string{}   // prepared statement name -> SQL
	portals := map[string]string{} // portal name -> statement name
	for {
		typ, err := r.ReadByte()
		if err != nil {
			return err
		}
		body, err := untyped(r)
		if err != nil {
			return err
		}
		switch typ {
		case 'Q':
			lg.line("simple", cstring(body, 0))
		case 'P':
			name := cstring(body, 0)
			sql := cstring(body, len(name)+1)
			stmts[name] = sql
			lg.line("prepare", sql)
		case 'B':
			portal := cstring(body, 0)
			portals[portal] = cstring(body, len(portal)+1)
		case 'E':
			lg.line("exec", stmts[portals[cstring(body, 0)]])
		case 'C': // Close
			if len(body) > 1 && body[0] == 'S' {
				delete(stmts, cstring(body, 1))
			}
		case 'X':
			return nil
		}
	}
}

func untyped(r *bufio.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := int(binary.BigEndian.Uint32(n[:])) - 4
	if size < 0 || size > 1<<30 {
		return nil, fmt.Errorf("bad message length %d", size+4)
	}
	body := make([]byte, size)
	_, err := io.ReadFull(r, body)
	return body, err
}

func cstring(b []byte, at int) string {
	if at >= len(b) {
		return ""
	}
	i := strings.IndexByte(string(b[at:]), 0)
	if i < 0 {
		return string(b[at:])
	}
	return string(b[at : at+i])
}
