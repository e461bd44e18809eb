package stash

import (
	"encoding/json"
	"errors"
	"time"
)

// JobStatus is Stash's JobStatus enum.
type JobStatus string

const (
	JobReady     JobStatus = "READY"     // queued behind another job
	JobRunning   JobStatus = "RUNNING"   // the one job Stash is working on
	JobFinished  JobStatus = "FINISHED"  // ended; individual scenes may still have failed
	JobStopping  JobStatus = "STOPPING"  // stop requested; the task in flight completes first
	JobCancelled JobStatus = "CANCELLED" // ended by stopJob
	JobFailed    JobStatus = "FAILED"    // ended with an error
)

// Ended reports whether a job in this status will never change again.
func (s JobStatus) Ended() bool {
	return s == JobFinished || s == JobCancelled || s == JobFailed
}

// Descriptions Stash gives the jobs stashgen cares about.
const (
	DescScanning   = "Scanning..."
	DescGenerating = "Generating..."
)

// Job is one entry of Stash's job queue.
type Job struct {
	ID          string     `json:"id"`
	Status      JobStatus  `json:"status"`
	SubTasks    []string   `json:"subTasks"`
	Description string     `json:"description"`
	Progress    *float64   `json:"progress"`
	StartTime   *time.Time `json:"startTime"`
	EndTime     *time.Time `json:"endTime"`
	AddTime     time.Time  `json:"addTime"`
	Error       *string    `json:"error"`
}

// IsScan reports whether the job is a scan that is queued or running: the
// kind of job a generation must make way for.
func (j Job) IsScan() bool {
	return j.Description == DescScanning && (j.Status == JobReady || j.Status == JobRunning)
}

// ErrJobNotFound is returned by FindJob when Stash answers null: the id is
// unknown, or the job ended more than ten jobs ago and Stash forgot it.
var ErrJobNotFound = errors.New("stash has no job with that id")

// GenerateInput is the GenerateMetadataInput stashgen sends: resolved
// toggles (every one set) and the scenes. SceneIDs must never be empty:
// Stash reads an empty list as "the whole library".
type GenerateInput struct {
	Toggles
	SceneIDs  []string `json:"sceneIDs"`
	Overwrite bool     `json:"overwrite"`
}

// MarshalJSON sends every toggle as true or false: an unset one is off,
// never null, whatever Stash would make of a null. The fields keep
// GenerateMetadataInput's order, as the dry run shows them.
func (in GenerateInput) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Covers                    bool     `json:"covers"`
		Sprites                   bool     `json:"sprites"`
		Previews                  bool     `json:"previews"`
		ImagePreviews             bool     `json:"imagePreviews"`
		Markers                   bool     `json:"markers"`
		MarkerImagePreviews       bool     `json:"markerImagePreviews"`
		MarkerScreenshots         bool     `json:"markerScreenshots"`
		Transcodes                bool     `json:"transcodes"`
		Phashes                   bool     `json:"phashes"`
		InteractiveHeatmapsSpeeds bool     `json:"interactiveHeatmapsSpeeds"`
		SceneIDs                  []string `json:"sceneIDs"`
		Overwrite                 bool     `json:"overwrite"`
	}{
		on(in.Covers), on(in.Sprites), on(in.Previews), on(in.ImagePreviews), on(in.Markers),
		on(in.MarkerImagePreviews), on(in.MarkerScreenshots), on(in.Transcodes), on(in.Phashes),
		on(in.InteractiveHeatmapsSpeeds), in.SceneIDs, in.Overwrite,
	})
}

// Scene is what stashgen keeps of a Stash scene. Paths are the URLs Stash
// reports for every scene whether or not the files exist; only a probe says
// whether they do.
type Scene struct {
	ID        string     `json:"id"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	Paths     ScenePaths `json:"paths"`
}

// ScenePaths are the URLs of a scene's generated files. Stream is never
// requested: it embeds the API key.
type ScenePaths struct {
	Preview string `json:"preview"`
	Webp    string `json:"webp"`
	VTT     string `json:"vtt"`
	Sprite  string `json:"sprite"`
}

// Marker is a scene marker with the URLs of its generated files.
type Marker struct {
	ID         string              `json:"id"`
	UpdatedAt  time.Time           `json:"updated_at"`
	Scene      struct{ ID string } `json:"scene"`
	Stream     string              `json:"stream"`
	Preview    string              `json:"preview"`
	Screenshot string              `json:"screenshot"`
}
