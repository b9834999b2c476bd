package badge

import (
	"fmt"
	"math"
)

// TextNotAnalysed is the efficiency badge of an image whose layer contents
// nobody has asked for yet.
const TextNotAnalysed = "not analysed"

// The efficiency badge's colours, from dive's reading of a score: an image
// that ships almost nothing it hides is green, one that ships a tenth or
// more for nothing turns yellow, then orange, then red.
const (
	ColorEfficient Color = "#4c1"
	ColorGood      Color = "#97ca00"
	ColorFair      Color = "#dfb317"
	ColorPoor      Color = "#fe7d37"
	ColorWasteful  Color = "#e05d44"
	efficientAbove       = 0.98
	goodAbove            = 0.95
	fairAbove            = 0.90
	poorAbove            = 0.75
)

// EfficiencyBadge is the efficiency badge of an analysed image: the
// efficiency as a whole percent, rounded down so that 99.6% never reads as
// a perfect 100%.
func EfficiencyBadge(efficiency float64) Badge {
	pct := int(math.Floor(efficiency*100 + 1e-9))
	color := ColorWasteful
	switch {
	case efficiency >= efficientAbove:
		color = ColorEfficient
	case efficiency >= goodAbove:
		color = ColorGood
	case efficiency >= fairAbove:
		color = ColorFair
	case efficiency >= poorAbove:
		color = ColorPoor
	}
	return Badge{Left: string(Efficiency), Right: fmt.Sprintf("%d%%", pct), Color: color}
}
