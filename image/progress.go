package image

// PullOptions tune a pull.
type PullOptions struct {
	// Progress, if set, hears of every layer's progress, one call at a time.
	Progress func(Progress)
}

// LayerState is where one layer of a pull is.
type LayerState int

const (
	LayerWaiting  LayerState = iota // another pull is unpacking it
	LayerFetching                   // Done of Total bytes read
	LayerDone                       // fetched, verified and unpacked
	LayerExists                     // already in the store
)

// Progress is news of one layer of a pull.
type Progress struct {
	Image string     `json:"image"` // the source, as Source.String
	Layer string     `json:"layer"` // the layer's diff ID
	Index int        `json:"index"` // the layer's place, from 0 at the bottom
	Count int        `json:"count"` // how many layers the image has
	State LayerState `json:"state"`
	// Done and Total are bytes of the layer as transferred (compressed);
	// Total is 0 when unknown.
	Done  int64 `json:"done,omitempty"`
	Total int64 `json:"total,omitempty"`
}

// PullError is a pull that failed: the source, and the registry's (or
// the layout's or archive's) reason.
type PullError struct {
	Source string
	Err    error
}

func (e *PullError) Error() string { return "pull " + e.Source + ": " + e.Err.Error() }
func (e *PullError) Unwrap() error { return e.Err }
