#pragma once
// The oracle: naive attention written for clarity, every option, forward and backward.
// `forward`/`backward` compute in float64 from inputs of any dtype and round only the final outputs.
// The `_lowp` variants imitate an unfused implementation in the input dtype (scores, probabilities and
// outputs rounded to it, float accumulation): their error against float64 sets the tests' tolerances.
#include "core/problem.hpp"

namespace omniattn::detail::reference {

void forward(const ForwardProblem& p);
void backward(const BackwardProblem& p);
void forward_lowp(const ForwardProblem& p);
void backward_lowp(const BackwardProblem& p);

}  // namespace omniattn::detail::reference
