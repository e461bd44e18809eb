package stashtest

import (
	"context"
	"slices"
	"strconv"
	"time"
)

// JobStatus is a Stash job state, spelled as the GraphQL enum.
type JobStatus string

// The states of Stash's JobStatus enum.
const (
	JobReady     JobStatus = "READY"
	JobRunning   JobStatus = "RUNNING"
	JobFinished  JobStatus = "FINISHED"
	JobStopping  JobStatus = "STOPPING"
	JobCancelled JobStatus = "CANCELLED"
	JobFailed    JobStatus = "FAILED"
)

// graveyardSize is how many ended jobs Stash remembers for findJob.
const graveyardSize = 10

const (
	kindGenerate = "generate"
	kindScan     = "scan"
)

type job struct {
	id          int
	kind        string
	status      JobStatus
	description string
	progress    float64
	addTime     time.Time
	startTime   time.Time
	endTime     time.Time
	err         string
	failMsg     *string

	// generate
	input    map[string]any
	work     []workItem
	done     int
	inFlight bool

	// scan
	ticks int

	stopTicksLeft int
}

// workItem is one scene (with its markers) or one marker a generate job
// processes; markerID is 0 for scenes.
type workItem struct {
	sceneID  int
	markerID int
}

// jobQueue is Stash's job manager: one queue run head first, and a graveyard
// of recently ended jobs.
type jobQueue struct {
	queue     []*job
	graveyard []*job
	nextID    int
	failNext  *string
	failByID  map[int]string
	changed   chan struct{} // closed and replaced at every change, for Await
}

func (q *jobQueue) init() {
	q.nextID = 1
	q.failByID = map[int]string{}
	q.changed = make(chan struct{})
}

// jobsChanged wakes Await. Called with s.mu held.
func (s *Server) jobsChanged() {
	close(s.jq.changed)
	s.jq.changed = make(chan struct{})
}

// Await waits until cond holds, checking it again after every change of
// the job queue (a job queued, started, moved on, stopped or ended) or a
// stop call, so a test can wait for the client to act without sleeping.
// cond may call the Server's methods.
func (s *Server) Await(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		changed := s.jq.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (q *jobQueue) find(id int) *job {
	for _, j := range q.queue {
		if j.id == id {
			return j
		}
	}
	for _, j := range q.graveyard {
		if j.id == id {
			return j
		}
	}
	return nil
}

func (s *Server) enqueue(kind, desc string, input map[string]any) *job {
	q := &s.jq
	j := &job{
		id:          q.nextID,
		kind:        kind,
		status:      JobReady,
		description: desc,
		addTime:     s.now,
		input:       input,
	}
	q.nextID++
	if msg, ok := q.failByID[j.id]; ok {
		j.failMsg = &msg
		delete(q.failByID, j.id)
	} else if kind == kindGenerate && q.failNext != nil {
		j.failMsg = q.failNext
		q.failNext = nil
	}
	q.queue = append(q.queue, j)
	s.pushJob(updateAdd, j)
	if len(q.queue) == 1 {
		s.startJob(j)
	}
	return j
}

func (s *Server) startJob(j *job) {
	j.status = JobRunning
	j.startTime = s.now
	j.progress = 0
	if j.kind == kindGenerate {
		j.work = s.planGenerate(j.input)
	}
	s.pushJob(updateUpdate, j)
}

// planGenerate decides, when the job starts as in Stash, what it will touch:
// no ids means the whole library; an unknown or malformed scene id makes
// Stash's lookup fail, so nothing is generated (yet the job finishes).
func (s *Server) planGenerate(in map[string]any) []workItem {
	sceneIDs, _ := in["sceneIDs"].([]any)
	markerIDs, _ := in["markerIDs"].([]any)
	var work []workItem
	if len(sceneIDs) == 0 && len(markerIDs) == 0 {
		for _, sc := range s.lib.scenes {
			work = append(work, workItem{sceneID: sc.id})
		}
		return work
	}
	for _, v := range sceneIDs {
		id, err := strconv.Atoi(idString(v))
		if err != nil || s.lib.sceneByID[id] == nil {
			return nil
		}
		work = append(work, workItem{sceneID: id})
	}
	var marks []workItem
	for _, v := range markerIDs {
		id, err := strconv.Atoi(idString(v))
		if err != nil || s.lib.markerByID[id] == nil {
			return work
		}
		marks = append(marks, workItem{markerID: id})
	}
	return append(work, marks...)
}

func flag(in map[string]any, name string) bool {
	b, _ := in[name].(bool)
	return b
}

// process generates one work item's files according to the input's toggles,
// following Stash: image previews come only with video previews, and marker
// files only with markers.
func (s *Server) process(j *job, w workItem) {
	in := j.input
	if w.markerID != 0 {
		m := s.lib.markerByID[w.markerID]
		if m != nil {
			s.logLocked(LogInfo, "[generator] generating marker files for "+m.scene.path)
			s.makeMarker(m, true, flag(in, "markerImagePreviews"), flag(in, "markerScreenshots"))
		}
		return
	}
	sc := s.lib.sceneByID[w.sceneID]
	if sc == nil {
		return // deleted while the job ran
	}
	s.logLocked(LogInfo, "[generator] generating files for "+sc.path)
	var add uint16
	if flag(in, "covers") {
		add |= resourceBits[ResourceCover]
	}
	if flag(in, "phashes") {
		add |= resourceBits[ResourcePhash]
	}
	if flag(in, "previews") {
		add |= resourceBits[ResourcePreview]
		if flag(in, "imagePreviews") {
			add |= resourceBits[ResourceWebP]
		}
	}
	if flag(in, "sprites") {
		add |= resourceBits[ResourceSprite] | resourceBits[ResourceVTT]
	}
	failed := add & sc.fail
	if !flag(in, "overwrite") {
		failed &^= sc.res // present files are skipped, not retried
	}
	s.logFailures(failed, sc.path, false)
	sc.res |= add &^ sc.fail
	if flag(in, "markers") {
		for _, m := range sc.markers {
			s.makeMarker(m, true, flag(in, "markerImagePreviews"), flag(in, "markerScreenshots"))
		}
	}
}

func (s *Server) makeMarker(m *marker, stream, preview, screenshot bool) {
	var add uint16
	if stream {
		add |= resourceBits[ResourceMarkerStream]
	}
	if preview {
		add |= resourceBits[ResourceMarkerPreview]
	}
	if screenshot {
		add |= resourceBits[ResourceMarkerScreenshot]
	}
	s.logFailures(add&m.fail&^m.res, m.scene.path, true)
	m.res |= add &^ m.fail
}

// tick advances the head job by one step.
func (s *Server) tick() {
	s.traceNoise()
	q := &s.jq
	if len(q.queue) == 0 {
		return
	}
	j := q.queue[0]
	switch j.status {
	case JobRunning:
		if j.failMsg != nil {
			j.err = *j.failMsg
			s.endJob(j, JobFailed)
			return
		}
		switch j.kind {
		case kindGenerate:
			n := s.scenesPerTick
			if n <= 0 {
				n = len(j.work)
			}
			for ; n > 0 && j.done < len(j.work); n-- {
				s.process(j, j.work[j.done])
				j.done++
			}
			if j.done >= len(j.work) {
				j.progress = 1
				s.endJob(j, JobFinished)
				return
			}
			j.progress = float64(j.done) / float64(len(j.work))
			s.pushJob(updateUpdate, j)
		case kindScan:
			j.ticks++
			if j.ticks >= s.scanTicks {
				j.progress = 1
				s.endJob(j, JobFinished)
				return
			}
			j.progress = float64(j.ticks) / float64(s.scanTicks)
			s.pushJob(updateUpdate, j)
		}
	case JobStopping:
		s.stopStep(j)
	}
}

// stopStep finishes the scene in flight, then counts down to CANCELLED.
// Each step is a progress update, the first one since stopJob, so it is
// where subscribers first see STOPPING.
func (s *Server) stopStep(j *job) {
	if j.inFlight {
		j.inFlight = false
		s.process(j, j.work[j.done])
		j.done++
		j.progress = float64(j.done) / float64(len(j.work))
	}
	s.pushJob(updateUpdate, j)
	j.stopTicksLeft--
	if j.stopTicksLeft <= 0 {
		s.endJob(j, JobCancelled)
	}
}

// endJob moves a job from the queue to the graveyard and starts the next.
func (s *Server) endJob(j *job, st JobStatus) {
	q := &s.jq
	j.status = st
	j.endTime = s.now
	wasHead := len(q.queue) > 0 && q.queue[0] == j
	q.queue = slices.DeleteFunc(q.queue, func(x *job) bool { return x == j })
	q.graveyard = append(q.graveyard, j)
	if len(q.graveyard) > graveyardSize {
		q.graveyard = slices.Delete(q.graveyard, 0, len(q.graveyard)-graveyardSize)
	}
	s.pushJob(updateRemove, j)
	if wasHead && len(q.queue) > 0 {
		s.startJob(q.queue[0])
	}
}

// stop is stopJob: READY jobs are cancelled at once, a RUNNING one goes
// STOPPING; anything else (ended, unknown) is ignored. As in Stash, going
// STOPPING pushes nothing to subscribers: they learn of it from the job's
// next progress update.
func (s *Server) stop(id int) {
	defer s.jobsChanged()
	j := s.jq.find(id)
	if j == nil {
		return
	}
	switch j.status {
	case JobReady:
		s.endJob(j, JobCancelled)
	case JobRunning:
		j.status = JobStopping
		j.inFlight = j.kind == kindGenerate && j.done < len(j.work)
		j.stopTicksLeft = s.stopTicks
		if s.stopTicks <= 0 {
			j.stopTicksLeft = 1
			s.stopStep(j)
		}
	}
}

// Tick advances the running job by one step, as a findJob poll on it does
// (unless WithAutoTick is set).
func (s *Server) Tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
}

// DrainJobs ticks until the queue is empty.
func (s *Server) DrainJobs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.jq.queue) > 0 {
		s.tick()
	}
}

// Restart models a Stash restart: queued and remembered jobs vanish and job
// ids start again at 1, while the library (scenes, markers, files) stays.
// Open websockets are cut, as a restarting process cuts them; no job event
// is pushed.
func (s *Server) Restart() {
	s.mu.Lock()
	s.jq.queue = nil
	s.jq.graveyard = nil
	s.jq.nextID = 1
	conns := s.dropWebsockets()
	s.mu.Unlock()
	closeWebsockets(conns)
}

// ForgetJob drops a job from Stash's memory so findJob answers null, as
// after a restart, while the client may still be polling it. Subscribers
// get no REMOVE for it (the next job starting is pushed as usual).
func (s *Server) ForgetJob(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := strconv.Atoi(id)
	if err != nil {
		return
	}
	q := &s.jq
	wasHead := len(q.queue) > 0 && q.queue[0].id == n
	q.queue = slices.DeleteFunc(q.queue, func(j *job) bool { return j.id == n })
	q.graveyard = slices.DeleteFunc(q.graveyard, func(j *job) bool { return j.id == n })
	if wasHead && len(q.queue) > 0 {
		s.startJob(q.queue[0])
	}
}

// FailJob makes the job with this id (queued now, or the next one to get
// it) end FAILED with msg at its first tick, having generated nothing.
func (s *Server) FailJob(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := strconv.Atoi(id)
	if err != nil {
		return
	}
	for _, j := range s.jq.queue {
		if j.id == n {
			j.failMsg = &msg
			return
		}
	}
	s.jq.failByID[n] = msg
}

// FailNextGenerate makes the next generate job end FAILED with msg at its
// first tick, having generated nothing.
func (s *Server) FailNextGenerate(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jq.failNext = &msg
}

// JobInfo is a job as the test sees it.
type JobInfo struct {
	ID          string
	Description string
	Status      JobStatus
	Progress    float64 // 0 until it runs
	Error       string
	AddTime     time.Time
	StartTime   time.Time // zero until it runs
	EndTime     time.Time // zero until it ends
	Input       map[string]any
}

// Jobs lists the queue (head first) and then the graveyard (oldest first).
func (s *Server) Jobs() []JobInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []JobInfo
	for _, list := range [][]*job{s.jq.queue, s.jq.graveyard} {
		for _, j := range list {
			out = append(out, JobInfo{
				ID: strconv.Itoa(j.id), Description: j.description, Status: j.status,
				Progress: j.progress, Error: j.err, AddTime: j.addTime,
				StartTime: j.startTime, EndTime: j.endTime, Input: j.input,
			})
		}
	}
	return out
}

// jobValue renders a job as the GraphQL Job type.
func jobValue(j *job) map[string]any {
	v := map[string]any{
		"id":          strconv.Itoa(j.id),
		"status":      string(j.status),
		"subTasks":    nil,
		"description": j.description,
		"progress":    nil,
		"startTime":   nil,
		"endTime":     nil,
		"addTime":     j.addTime,
		"error":       nil,
	}
	if !j.startTime.IsZero() {
		v["progress"] = j.progress
		v["startTime"] = j.startTime
	}
	if !j.endTime.IsZero() {
		v["endTime"] = j.endTime
	}
	if j.err != "" {
		v["error"] = j.err
	}
	return v
}
