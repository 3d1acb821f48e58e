// Package logs carries what the containers of a stack write, from their
// pipes to the log files and the terminal, and back out for `stack logs`.
//
// # Writing: pipe, splitter, file, output
//
// The supervisor makes an Aggregator for the stack (New) and, for each run
// of a container, hands its stdout and stderr read ends to the container's
// Log (Capture). Each stream is read by its own goroutine:
//
//  1. Split. Reads land in a buffer right after the pending, unfinished
//     line; the lines they complete are taken as slices of that buffer,
//     never copied one by one: all the whole lines of a read are one run,
//     found with one search for its last newline. The buffer holds 64 KiB
//     and grows while reads fill it, up to the 256 KiB a captured pipe is
//     asked for (so a busy container's pipe is emptied in one read, and a
//     bursty one blocks less often), and while a longer line is pending.
//     A line of up to MaxLine (256 KiB) bytes stays whole. A longer one is
//     cut into pieces of at most MaxLine bytes (before a UTF-8 sequence
//     rather than through it); each piece but the last is marked partial.
//     When the stream ends, a last line without a newline is written,
//     marked partial too: partial means "no newline followed", so the
//     stream is the pieces joined, with a newline after each one not
//     partial. No byte is dropped or reordered.
//
//  2. Persist. What one read brings is one batch, written to
//     <dir>/<container>.log with one write, under the container's lock so
//     that stdout, stderr and events land in time order (times are taken
//     under the lock and never go back). The lines of a batch share their
//     time and stream, so a run of them is one record: a head, a JSON
//     object on a line of its own that says how many bytes follow, then
//     the lines as the container wrote them, joined by newlines, and a
//     newline:
//
//     {"time":"2006-01-02T15:04:05.000000000Z","stream":"stdout","bytes":7}
//     one
//     two
//
//     stream is stdout, stderr or event; "partial":true marks the last
//     line of a record as a piece (the others are whole). The text is
//     stored as it is, whatever its bytes (a JSON string would need every
//     byte looked at and escaped, and text that is not UTF-8 in base64),
//     and written from the buffer it was read into (writev: the head, the
//     run, which ends in the newline that ends the record): the capture
//     copies a byte only into the kernel, and looks at it only to find
//     the last newline of a read. A reader finds each head from the one
//     before, never by looking in the text, so a container cannot write
//     a record; what is not a record (a damaged file) ends what can be
//     read of its file, and a torn record left by a crash is cut off
//     before the file is written again (Log.open). Before a record would
//     take the file past Config.MaxSize, it is cut between two lines and
//     the file rotated: .log.k becomes .log.k+1 (up to Config.Keep), .log
//     becomes .log.1; only a line whose record alone is larger has a
//     file to itself. A failed write (a full disk) is cut back out of the
//     file so that no torn record is left, and its lines are counted as
//     lost. A busy stream's file is given its disk space a MiB ahead
//     (fallocate, keeping its size), which on ext4 spares each write the
//     delayed allocation of every block it fills; the space left is given
//     back when the file is rotated or closed.
//
//  3. Show. The same batch goes, as it was read, to one writer
//     goroutine for the stack's output, as one chunk: a read that brought
//     one run of whole lines filling at least half the buffer goes in the
//     buffer itself, which the capture gives up for another from the
//     output's (so a busy stream's lines are not copied for it), any
//     other read as a copy. That goroutine formats each line as
//     `NAME | LINE` (names padded to the longest of the stack, colored
//     when Config.Color; a second kernel copies the run 32 bytes a step
//     and puts the prefix after each newline) just before it writes, the
//     chunks of several reads in one write. So the
//     formatting runs beside the captures rather than in their way, and
//     lines dropped for a slow output (below) are never formatted. Lines
//     of two containers are never mixed within a line. Supervisor events
//     (Log.Event) are shown as `NAME * MESSAGE`, formatted at once: the
//     container cannot forge one, since whatever it writes is put after
//     `NAME | `, and what it controls cannot choose a chunk's prefix.
//
// # A slow output costs lines of the output only
//
// The file write never waits for the output. Chunks wait in a queue of at
// most Config.OutputBuffer bytes; when the output falls that far behind,
// new lines are dropped from the output (not from the files), counted, and
// a line `[stack] N lines not shown here ...` takes their place once there
// is room. Blocking instead would stall the capture, fill the container's
// pipe and block the container itself on a write: a paused terminal would
// change how the containers run. Events are always queued.
//
// # What a crash of the supervisor can lose
//
// Each read's batch is written to the file in one write(2) (two around a
// rotation) before the next read, and nothing is held back between
// reads. So each write persists every line the container wrote before
// that round's read began, and a crash loses at most what came after the
// start of the last round that completed: the batch of the round in
// progress and what still waits in the pipe, at most 256 KiB each. D is
// so two rounds, each the read and write of at most 256 KiB:
// a fraction of a millisecond for a capture that has a core (0.2 ms the
// median, 2 ms the 99th percentile, for one busy stream on a 2-core
// machine), longer while it waits for one (eight busy streams on two
// cores: 22 ms the 99th percentile, 0.1 s the worst) or while the write
// blocks (a stalled disk). Meanwhile nothing more is read: a container
// that writes faster than its lines are stored blocks on its pipe,
// instead of its lines waiting in the supervisor. The file holds whole
// records up to the crash; a write cut short by it leaves a torn last
// record, which Print passes over and reports.
//
// # Reading back: Print
//
// Print reads the files of the containers asked for, oldest rotated file
// first, and merges them by time (equal times in name order) with a heap of
// each file's next record; -n counts lines back from the newest file
// (a record holds one for each newline in its text, and one more),
// keeping only the records it shows.
// Following, it polls for records written since, in rounds, each round
// sorted by time. A reader knows a file by its inode: when the current file
// has been renamed away, it reads it to its end (the writer closed it
// before the rename) and moves to the file that came after it, so that it
// keeps up across rotations and, since a container keeps its Log, across
// restarts. It stops when the context ends or the caller's Stopped says
// the stack has ended, after one more round for what was written before.
// The containers are those with a log when Print starts (New creates every
// container's file at once). An unreadable record is passed over and
// reported after the rest: a torn record at the end of a file does not
// hide the files after it.
//
// # Ownership
//
// A capture goroutine ends when its stream does (EOF, or the reader being
// closed); Log.Wait waits for those of one container, Aggregator.Close for
// all, then drains the output and closes the files. Write errors do not
// stop a capture, which keeps draining the pipe; they are collected and
// returned, each once, by Wait and Close.
package logs
