package history

import (
	"testing"
	"time"
)

// Usage adds up per user over chats and kinds, by UTC day and month: a request on the last
// evening of a month (UTC) counts in that month, and the first of the next starts afresh.
func TestUsage(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	at := func(v string) time.Time {
		tm, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, u := range []Usage{
		{User: 1, Chat: 1, Name: "Ann", Kind: UsageChat, In: 100, Out: 10, At: at("2025-03-31T23:30:00Z")},
		{User: 1, Chat: 1, Name: "Ann", Kind: UsageChat, In: 200, Out: 20, At: at("2025-04-01T00:30:00+02:00")}, // 22:30 UTC, March 31
		{User: 1, Chat: -5, Name: "Ann B.", Kind: UsageChat, In: 1000, Out: 100, At: at("2025-04-01T00:00:00Z")},
		{User: 1, Chat: -5, Kind: UsageSummary, In: 50, Out: 5, At: at("2025-04-01T10:00:00Z")},
		{User: 1, Chat: 1, Name: "Ann", Kind: UsageChat, In: 7, Out: 3, At: at("2025-04-02T10:00:00Z")},
		{User: 2, Chat: -5, Name: "Bob", Kind: UsageChat, In: 5000, Out: 500, At: at("2025-04-01T12:00:00Z")},
		{User: 3, Chat: 3, Name: "Cy", Kind: UsageChat, In: 1, Out: 1, At: at("2025-03-15T12:00:00Z")},
	} {
		if err := s.AddUsage(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddUsage(ctx, Usage{User: 1, Kind: "other"}); err == nil {
		t.Error("unknown kind: got no error")
	}

	now := at("2025-04-01T18:00:00Z")
	got, err := s.UsageOf(ctx, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	want := UserUsage{User: 1, Name: "Ann", // as last seen, on April 2nd
		Day: Tokens{1050, 105, 2}, Month: Tokens{1050, 105, 2},
		DaySummaries: Tokens{50, 5, 1}, MonthSummaries: Tokens{50, 5, 1}}
	if got != want {
		t.Errorf("April 1st: got %+v, want %+v", got, want)
	}
	got, _ = s.UsageOf(ctx, 1, at("2025-03-31T23:59:00Z"))
	if want := (Tokens{300, 30, 2}); got.Day != want || got.Month != want || got.Name != "Ann" {
		t.Errorf("March 31st: got %+v, want %+v on the day and in the month, named Ann", got, want)
	}
	got, _ = s.UsageOf(ctx, 1, at("2025-04-02T08:00:00Z"))
	if got.Day != (Tokens{7, 3, 1}) || got.Month != (Tokens{1057, 108, 3}) {
		t.Errorf("April 2nd: got %+v", got)
	}
	if got, err := s.UsageOf(ctx, 9, now); err != nil || got != (UserUsage{User: 9}) {
		t.Errorf("a user who never asked: got %+v, %v", got, err)
	}

	all, err := s.UsageAll(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].User != 2 || all[0].Month.Total() != 5500 || all[1].User != 1 {
		t.Errorf("UsageAll: got %+v, want Bob then Ann (Cy used nothing in April)", all)
	}
}
