package stash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/machinebox/graphql"
)

// Options configure a Client.
type Options struct {
	URL     string        // Stash's base URL; GraphQL is at <URL>/graphql
	APIKey  string        // sent as the ApiKey header; empty = no auth
	Timeout time.Duration // per HTTP request
	// MaxBody caps a GraphQL answer; bigger answers are refused rather than
	// read into memory. Zero means 16 MiB.
	MaxBody int64
	// Conns is how many keep-alive connections file probes may keep open.
	Conns int
}

// Client talks to one Stash server. It is safe for concurrent use.
type Client struct {
	base     *url.URL
	endpoint string // redacted GraphQL URL, for errors
	key      string
	api      *apiTransport
	gql      *graphql.Client
	files    *http.Client

	// Subscriptions: the websocket form of the GraphQL URL, and a client on
	// the same transport (proxy, dialer) without http.Client's timeout,
	// which coder/websocket replaces with a context.
	wsURL   string
	wsHTTP  *http.Client
	timeout time.Duration
	maxBody int64
}

// New builds a client. It does not contact Stash.
func New(o Options) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(o.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("stash url %q: want an absolute http(s) URL such as http://localhost:9999", redactRaw(o.URL))
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 16 << 20
	}
	if o.Conns <= 0 {
		o.Conns = 4
	}
	endpoint := base.JoinPath("graphql")
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          o.Conns + 2,
		MaxIdleConnsPerHost:   o.Conns + 2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
	}
	ws := *endpoint
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[base.Scheme]
	c := &Client{
		base:     base,
		endpoint: redactURL(endpoint),
		key:      o.APIKey,
		wsURL:    ws.String(),
		timeout:  o.Timeout,
		maxBody:  o.MaxBody,
	}
	c.api = &apiTransport{base: tr, key: o.APIKey, maxBody: o.MaxBody, where: c.endpoint}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	apiHTTP := &http.Client{Transport: c.api, Timeout: o.Timeout, CheckRedirect: noRedirect}
	// Never set c.gql.Log: machinebox prints request headers there, the
	// API key among them.
	c.gql = graphql.NewClient(endpoint.String(), graphql.WithHTTPClient(apiHTTP))
	c.files = &http.Client{Transport: tr, Timeout: o.Timeout, CheckRedirect: noRedirect}
	c.wsHTTP = &http.Client{Transport: tr, CheckRedirect: noRedirect}
	return c, nil
}

// URL is Stash's base URL, safe to print.
func (c *Client) URL() string { return redactURL(c.base) }

// run sends one operation and decodes each top-level field of the answer
// into the pointer fields holds for it. A field missing from the answer is
// an error: a broken answer must never read as "no scenes" or "no job".
func (c *Client) run(ctx context.Context, op, query string, vars map[string]any, fields map[string]any) error {
	req := graphql.NewRequest(query)
	for k, v := range vars {
		req.Var(k, v)
	}
	var data map[string]json.RawMessage
	if err := c.gql.Run(ctx, req, &data); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var se *Error
		var ue *url.Error
		switch {
		case errors.As(err, &se):
			e := *se
			e.Op = op
			return &e
		case errors.As(err, &ue):
			return c.fail(&Error{Op: op, URL: c.endpoint, Kind: KindUnavailable, Err: describeNetErr(ue.Err)})
		default: // the JSON decoded but not into what we asked for
			return c.fail(&Error{Op: op, URL: c.endpoint, Kind: KindProtocol, Err: err})
		}
	}
	for name, dst := range fields {
		raw, ok := data[name]
		if !ok {
			return c.fail(&Error{Op: op, URL: c.endpoint, Kind: KindProtocol, Status: http.StatusOK,
				Msg: "no " + name + " in the answer"})
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return c.fail(&Error{Op: op, URL: c.endpoint, Kind: KindProtocol, Status: http.StatusOK,
				Msg: "decoding " + name, Err: err})
		}
	}
	return nil
}

// fail marks e with the key, so that Error() blanks it wherever Stash's
// answer (quoted by a decoding error, say) carried it.
func (c *Client) fail(e *Error) *Error {
	e.secret = c.key
	return e
}

// describeNetErr makes timeouts say so plainly.
func describeNetErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no answer within stash.timeout: %w", err)
	}
	return err
}

func redactRaw(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return redactURL(u)
}

const jobFields = `id status subTasks description progress startTime endTime addTime error`

const (
	qJobQueue      = `query JobQueue { jobQueue { ` + jobFields + ` } }`
	qFindJob       = `query FindJob($id: ID!) { findJob(input: {id: $id}) { ` + jobFields + ` } }`
	mStopJob       = `mutation StopJob($id: ID!) { stopJob(job_id: $id) }`
	mGenerate      = `mutation Generate($input: GenerateMetadataInput!) { metadataGenerate(input: $input) }`
	defaultsFields = `configuration { defaults { generate {
		covers sprites previews imagePreviews markers markerImagePreviews
		markerScreenshots transcodes phashes interactiveHeatmapsSpeeds } } }`
	qDefaults         = `query GenerateDefaults { ` + defaultsFields + ` }`
	qQueueAndDefaults = `query JobQueueAndDefaults { jobQueue { ` + jobFields + ` } ` + defaultsFields + ` }`
)

// defaultsAnswer is the configuration field of an answer.
type defaultsAnswer struct {
	Defaults struct {
		Generate *Toggles `json:"generate"`
	} `json:"defaults"`
}

func (d defaultsAnswer) toggles() Toggles {
	if g := d.Defaults.Generate; g != nil {
		return *g
	}
	return Toggles{}
}

// JobQueue lists queued and running jobs. Stash answers null for an empty
// queue; that is an empty slice here.
func (c *Client) JobQueue(ctx context.Context) ([]Job, error) {
	var jobs []Job
	if err := c.run(ctx, "jobQueue", qJobQueue, nil, map[string]any{"jobQueue": &jobs}); err != nil {
		return nil, err
	}
	return jobs, nil
}

// FindJob returns a job, or ErrJobNotFound when Stash answers null.
func (c *Client) FindJob(ctx context.Context, id string) (Job, error) {
	var job *Job
	if err := c.run(ctx, "findJob", qFindJob, map[string]any{"id": id}, map[string]any{"findJob": &job}); err != nil {
		return Job{}, err
	}
	if job == nil {
		return Job{}, fmt.Errorf("find job %s: %w", id, ErrJobNotFound)
	}
	if job.Error != nil {
		// A failed job's error goes to the ledger, the audit row and the
		// ping: Stash's text may quote a URL that carries the key.
		e := scrub(*job.Error, c.key)
		job.Error = &e
	}
	return *job, nil
}

// StopJob asks Stash to stop a job. Stash answers true even for an unknown
// id, so callers confirm with FindJob.
func (c *Client) StopJob(ctx context.Context, id string) error {
	var stopped bool
	return c.run(ctx, "stopJob", mStopJob, map[string]any{"id": id}, map[string]any{"stopJob": &stopped})
}

// Launch is Stash's answer to metadataGenerate.
type Launch struct {
	JobID string
	// Date is Stash's clock when it answered (its Date header, to the
	// second): within a second of the job's addTime. Zero when the answer
	// had none.
	Date time.Time
}

// Generate starts metadataGenerate and returns Stash's job id with the
// time of the answer. It refuses an empty scene list, which Stash would
// read as the whole library.
func (c *Client) Generate(ctx context.Context, in GenerateInput) (Launch, error) {
	if len(in.SceneIDs) == 0 {
		return Launch{}, errors.New("generate: refusing an empty sceneIDs list (stash would generate the whole library)")
	}
	var l Launch
	ctx = withDate(ctx, &l.Date)
	if err := c.run(ctx, "metadataGenerate", mGenerate, map[string]any{"input": in}, map[string]any{"metadataGenerate": &l.JobID}); err != nil {
		return Launch{}, err
	}
	if l.JobID == "" {
		return Launch{}, c.fail(&Error{Op: "metadataGenerate", URL: c.endpoint, Kind: KindProtocol, Status: http.StatusOK, Msg: "no job id in the answer"})
	}
	return l, nil
}

// GenerateDefaults reads the generate options the user saved in Stash's
// settings (what Stash's own Generate button uses). All unset when none.
func (c *Client) GenerateDefaults(ctx context.Context) (Toggles, error) {
	var cfg defaultsAnswer
	if err := c.run(ctx, "configuration", qDefaults, nil, map[string]any{"configuration": &cfg}); err != nil {
		return Toggles{}, err
	}
	return cfg.toggles(), nil
}

// QueueAndDefaults is JobQueue and GenerateDefaults in one request: a run
// that looks at the queue anyway notices a change of Stash's generate
// defaults at no extra cost.
func (c *Client) QueueAndDefaults(ctx context.Context) ([]Job, Toggles, error) {
	var jobs []Job
	var cfg defaultsAnswer
	if err := c.run(ctx, "jobQueue", qQueueAndDefaults, nil, map[string]any{"jobQueue": &jobs, "configuration": &cfg}); err != nil {
		return nil, Toggles{}, err
	}
	return jobs, cfg.toggles(), nil
}
