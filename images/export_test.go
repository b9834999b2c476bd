package images

// Cached returns how many reports and answers are kept in memory, and
// their summed costs, for tests of the caches' bounds.
func (s *Service) Cached() (reports, answers int, reportBytes, answerBytes int64) {
	return s.reports.Len(), s.answers.Len(), s.reports.Cost(), s.answers.Cost()
}

// ReportCost is reportCost, for tests that size a budget in reports.
var ReportCost = reportCost
