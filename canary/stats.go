package canary

import "math"

// The tests here are exact — their p-values are sums of exact binomial or
// hypergeometric probabilities, not normal approximations — so they hold for
// the handful of requests a low-traffic CUJ sends a canary. Probabilities are
// computed in log space with Loader's saddle-point form (the one R's dbinom
// and dhyper use): no factorial is formed, so counts in the billions neither
// overflow nor lose digits to cancellation, and the tails stay accurate to
// about 1e-13 relative.

// lnSqrt2Pi is ln √(2π).
const lnSqrt2Pi = 0.918938533204672741780329736406

// stirlerr returns ln(n!) − ln(√(2πn)·(n/e)^n), the error of Stirling's formula.
func stirlerr(n float64) float64 {
	const (
		s0 = 1.0 / 12
		s1 = 1.0 / 360
		s2 = 1.0 / 1260
		s3 = 1.0 / 1680
		s4 = 1.0 / 1188
	)
	if n <= 15 {
		if n == 0 {
			return 0
		}
		lg, _ := math.Lgamma(n + 1)
		return lg - (n+0.5)*math.Log(n) + n - lnSqrt2Pi
	}
	nn := n * n
	switch {
	case n > 500:
		return (s0 - s1/nn) / n
	case n > 80:
		return (s0 - (s1-s2/nn)/nn) / n
	case n > 35:
		return (s0 - (s1-(s2-s3/nn)/nn)/nn) / n
	}
	return (s0 - (s1-(s2-(s3-s4/nn)/nn)/nn)/nn) / n
}

// bd0 returns x·ln(x/np) + np − x without the cancellation of the direct form.
func bd0(x, np float64) float64 {
	if math.Abs(x-np) < 0.1*(x+np) {
		v := (x - np) / (x + np)
		s := (x - np) * v
		ej := 2 * x * v
		v *= v
		for j := 1; j < 1000; j++ {
			ej *= v
			s1 := s + ej/float64(2*j+1)
			if s1 == s {
				return s1
			}
			s = s1
		}
		return s
	}
	return x*math.Log(x/np) + np - x
}

// logBinomPMF returns ln P(X = x) for X ~ Binomial(n, p); q = 1 − p is given
// separately so that both can be exact ratios of counts.
func logBinomPMF(x, n uint64, p, q float64) float64 {
	fx, fn := float64(x), float64(n)
	switch {
	case p == 0:
		if x == 0 {
			return 0
		}
		return math.Inf(-1)
	case q == 0:
		if x == n {
			return 0
		}
		return math.Inf(-1)
	case x == 0:
		if p < 0.1 {
			return -bd0(fn, fn*q) - fn*p
		}
		return fn * math.Log(q)
	case x == n:
		if q < 0.1 {
			return -bd0(fn, fn*p) - fn*q
		}
		return fn * math.Log(p)
	}
	lc := stirlerr(fn) - stirlerr(fx) - stirlerr(fn-fx) - bd0(fx, fn*p) - bd0(fn-fx, fn*q)
	lf := 2*lnSqrt2Pi + math.Log(fx) + math.Log1p(-fx/fn)
	return lc - 0.5*lf
}

// tailSum adds the terms of a unimodal distribution from its log-term at
// start outwards, each next term being the previous times ratio(x): it stops
// once terms no longer change the sum.
func tailSum(logFirst float64, from, to uint64, ratio func(x uint64) float64) float64 {
	if logFirst < -745 { // below the smallest float64: the tail is (at most a few times) smaller still
		return 0
	}
	term := math.Exp(logFirst)
	sum := term
	for x := from; x < to; x++ {
		term *= ratio(x)
		sum += term
		if term <= sum*1e-17 {
			break
		}
	}
	return sum
}

// BinomialTail returns P(X ≥ k) for X ~ Binomial(n, p): how likely a
// release whose true bad ratio is p shows k or more bad requests of n.
func BinomialTail(k, n uint64, p float64) float64 {
	switch {
	case k == 0:
		return 1
	case k > n || p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	// Past the mode the terms fall: sum upwards from k. Before it, the
	// complement P(X ≤ k−1) is the falling side: sum downwards from k−1.
	mode := uint64(float64(n+1) * p)
	logPMF := func(x uint64) float64 { return logBinomPMF(x, n, p, 1-p) }
	odds := p / (1 - p)
	if k > mode {
		return clamp01(tailSum(logPMF(k), k, n, func(x uint64) float64 {
			return float64(n-x) / float64(x+1) * odds // P(x+1)/P(x)
		}))
	}
	lower := tailSum(logPMF(k-1), 0, k-1, func(i uint64) float64 {
		x := k - 1 - i // P(x-1)/P(x)
		return float64(x) / float64(n-x+1) / odds
	})
	return clamp01(1 - lower)
}

// FisherGreater returns the one-sided p-value of Fisher's exact test that
// the first group's bad ratio is greater than the second's: with a bad of n1
// and b bad of n2, P(X ≥ a) where X is the first group's bad count when the
// a+b bad requests fall at random among all n1+n2 (hypergeometric).
func FisherGreater(a, n1, b, n2 uint64) float64 {
	bad, n := a+b, n1+n2
	hi := min(n1, bad) // the most bad requests the first group can hold
	lo := bad - min(bad, n2)
	switch {
	case a <= lo:
		return 1
	case a > hi:
		return 0
	}
	// As R's dhyper: a ratio of binomial probabilities at p = n1/n.
	p, q := float64(n1)/float64(n), float64(n2)/float64(n)
	logAll := logBinomPMF(n1, n, p, q)
	logPMF := func(x uint64) float64 {
		return logBinomPMF(x, bad, p, q) + logBinomPMF(n1-x, n-bad, p, q) - logAll
	}
	// P(x+1)/P(x) = (bad−x)(n1−x) / ((x+1)(n−bad−n1+x+1)).
	up := func(x uint64) float64 {
		return float64(bad-x) * float64(n1-x) / (float64(x+1) * float64(n-bad-n1+x+1))
	}
	mode := uint64((float64(n1) + 1) * (float64(bad) + 1) / (float64(n) + 2))
	if a > mode {
		return clamp01(tailSum(logPMF(a), a, hi, up))
	}
	lower := tailSum(logPMF(a-1), 0, a-1-lo, func(i uint64) float64 {
		x := a - 1 - i
		return 1 / up(x-1) // P(x−1)/P(x)
	})
	return clamp01(1 - lower)
}

func clamp01(p float64) float64 {
	switch {
	case p < 0 || math.IsNaN(p):
		return 0
	case p > 1:
		return 1
	}
	return p
}

// MinRequests is the fewest requests a release must serve before a clean
// record can show, at the given confidence, that its bad ratio is within
// limit: with zero bad requests of n, the exact one-sided upper confidence
// bound of the bad ratio is 1 − α^(1/n), which is at most limit once
// n ≥ ln α / ln(1 − limit). For a 99.9% SLO and 95% confidence that is 2,995
// requests — about three allowed errors (−ln 0.05 ≈ 3, the "rule of three").
// Fewer requests cannot pass, however clean.
func MinRequests(limit, alpha float64) uint64 {
	switch {
	case limit >= 1:
		return 1
	case limit <= 0:
		return math.MaxUint64
	}
	n := math.Log(alpha) / math.Log1p(-limit)
	// Guard the ceiling against a quotient a hair above an integer.
	c := math.Ceil(n - 1e-9)
	return max(uint64(c), 1)
}
