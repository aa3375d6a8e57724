package pool

import (
	"encoding/json"
	"testing"
)

var allStates = []State{StateStarting, StateReady, StateDraining, StateStopping, StateExited, StateBusy, StateSpare}

// TestTransitionTable checks transitionLocked against the table in the
// member doc comment: every listed move happens, every other is refused
// and leaves the state as it was.
func TestTransitionTable(t *testing.T) {
	legal := map[[2]State]bool{
		{StateStarting, StateReady}:    true,
		{StateStarting, StateExited}:   true,
		{StateReady, StateDraining}:    true,
		{StateReady, StateStopping}:    true,
		{StateReady, StateExited}:      true,
		{StateDraining, StateStopping}: true,
		{StateDraining, StateExited}:   true,
		{StateStopping, StateExited}:   true,
	}
	for _, from := range allStates {
		for _, to := range allStates {
			p := &Pool{}
			m := &member{state: from}
			got := p.transitionLocked(m, to)
			want := legal[[2]State{from, to}]
			if got != want {
				t.Errorf("%s → %s: moved = %v, want %v", from, to, got, want)
			}
			wantState := from
			if want {
				wantState = to
			}
			if m.state != wantState {
				t.Errorf("%s → %s: state after = %s, want %s", from, to, m.state, wantState)
			}
		}
	}
}

// TestExitedEndsFlags: entering Exited ends what cannot outlive the
// process, once.
func TestExitedEndsFlags(t *testing.T) {
	p := &Pool{stuck: 1}
	emptied := make(chan struct{})
	m := &member{state: StateReady, stuck: true, recycling: true, emptied: emptied}
	if !p.transitionLocked(m, StateExited) {
		t.Fatal("Ready → Exited refused")
	}
	if m.stuck || p.stuck != 0 {
		t.Errorf("after Exited: stuck = %v, pool's stuck = %d; want false, 0", m.stuck, p.stuck)
	}
	select {
	case <-emptied:
	default:
		t.Error("after Exited: emptied not closed")
	}
	if m.emptied != nil {
		t.Error("after Exited: emptied still set")
	}
	if !m.recycling {
		t.Error("after Exited: recycling cleared, want it kept (asked once)")
	}
	if p.transitionLocked(m, StateExited) || p.stuck != 0 {
		t.Errorf("second Exited: moved, or pool's stuck = %d", p.stuck)
	}
}

func TestStateText(t *testing.T) {
	for _, s := range allStates {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal %d: %v", s, err)
		}
		var got State
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Errorf("round trip of %s: got %s (%s), %v", s, got, b, err)
		}
	}
	var got State
	if err := json.Unmarshal([]byte(`"hibernating"`), &got); err != nil || got.String() != "unknown" {
		t.Errorf(`Unmarshal "hibernating": got %s, %v; want unknown, nil`, got, err)
	}
	if got, want := StateBusy.String(), "busy"; got != want {
		t.Errorf("StateBusy = %q, want %q", got, want)
	}
	if got, want := StateSpare.String(), "spare"; got != want {
		t.Errorf("StateSpare = %q, want %q", got, want)
	}
}
