//go:build ignore

// Command parity checks that badge.Render draws exactly what go-badge draws
// from the same (cleaned) texts, over kerning-heavy, Latin-1, symbol and
// non-Latin strings. Like genmetrics it needs go-badge, so run it from a
// scratch module that requires github.com/narqo/go-badge
// v0.0.0-20230821190521-c9a75c019a59 and imagebadger (replace imagebadger =>
// this checkout):
//
//	go run ./parity.go
package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"

	gobadge "github.com/narqo/go-badge"

	"imagebadger/badge"
)

func main() {
	rng := rand.New(rand.NewPCG(1, 2))
	pools := [][]rune{
		[]rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-_:/@+<>&'\"AVTyToWaLTPYF,;!?()[]{}"),
		[]rune("àéîõüßçñøåæœÆŒ€£¥©®™…–—‘’“”•·¡¿ÀÉÎÕÜ"),
		[]rune("日本語🙂𝄞ЖжΩωאבـ\u0301\u200b"),
	}
	inputs := []string{"version", "1.2.3", "18.6 MB", "8 layers", "AVAVAVAV", "Tj To Ty Yo WA", "acme/runtime:3.0 (outdated)", "a+b", "<script>", ""}
	for i := 0; i < 20000; i++ {
		pool := pools[rng.IntN(len(pools))]
		if rng.IntN(3) == 0 {
			pool = append(append([]rune{}, pools[0]...), pool...)
		}
		rs := make([]rune, rng.IntN(40))
		for j := range rs {
			rs[j] = pool[rng.IntN(len(pool))]
		}
		inputs = append(inputs, string(rs))
	}
	colors := []badge.Color{badge.ColorValue, badge.ColorCurrent, badge.ColorWarning, badge.ColorMissing}
	differ := 0
	for i, l := range inputs {
		r, c := inputs[(i*7+3)%len(inputs)], colors[i%len(colors)]
		mine := badge.Render(badge.Badge{Left: l, Right: r, Color: c}).SVG
		theirs, err := gobadge.RenderBytes(badge.Clean(l, badge.MaxLeft), badge.Clean(r, badge.MaxRight), gobadge.Color(c))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if !bytes.Equal(mine, theirs) {
			differ++
			if differ <= 3 {
				fmt.Printf("differ for %q %q:\n mine %s\ngo-badge %s\n", l, r, mine, theirs)
			}
		}
	}
	fmt.Printf("%d badges compared, %d differ\n", len(inputs), differ)
	if differ > 0 {
		os.Exit(1)
	}
}
