package hooks

import (
	"os"

	"github.com/livedict/livedict/pkg/sandbox"
	"golang.org/x/sys/unix"
)

// PrepareSpawn marks every descriptor above stderr close-on-exec before a
// detached deliverer is started: os/exec passes on every descriptor this
// process inherited without the flag, and the deliverer, which can outlive
// the command by a hook's timeout, would keep the caller's pipes open
// (`( exec 9>&1; livedict set k v ) | cat` would wait for the hook).
func PrepareSpawn() error { return sandbox.MarkCloseOnExec(3) }

// Detach cuts a detached deliverer loose from whoever started it, first
// thing: it closes every descriptor above stderr that it inherited and
// puts stdin and stdout on /dev/null, so no pipe or file of the command
// that caused the events stays open while hooks run. stderr is left as it
// is: the writer that spawns a deliverer gives it /dev/null there already,
// and a deliverer run by hand must still be able to say why it refuses a
// store.
func Detach() error {
	err := sandbox.CloseInherited(3)
	null, nerr := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if nerr != nil {
		return nerr
	}
	defer null.Close()
	for fd := 0; fd <= 1; fd++ {
		if derr := unix.Dup3(int(null.Fd()), fd, 0); derr != nil && err == nil {
			err = derr
		}
	}
	return err
}
