// The Butcher tableaux (dde/tableau.hpp) against the Runge–Kutta order conditions, written
// here from rooted trees (Hairer, Nørsett & Wanner I, II.2): a weight vector w has order p when
// Σ_i w_i Φ_i(t) = 1/γ(t) for every rooted tree t with at most p vertices, where
// Φ_i(t) = Π_children (Σ_j a_ij Φ_j(child)) and γ(t) = |t| Π γ(child). The trees are generated,
// not listed, so a missing condition cannot hide.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <vector>

#include "delyap/dde/tableau.hpp"

using namespace delyap;

namespace {

struct Tree {
  int order;
  std::vector<int> children;  // indices into the tree list, non-decreasing (a multiset)
  double gamma;
};

// All rooted trees with up to max_order vertices, by order.
std::vector<Tree> rooted_trees(int max_order) {
  std::vector<Tree> trees{{1, {}, 1.0}};
  for (int n = 2; n <= max_order; ++n) {
    const int known = int(trees.size());  // every tree of order < n
    std::vector<int> kids;
    std::function<void(int, int)> grow = [&](int remaining, int first) {
      if (remaining == 0) {
        double g = n;
        for (int c : kids) g *= trees[c].gamma;
        trees.push_back({n, kids, g});
        return;
      }
      for (int c = first; c < known; ++c) {
        if (trees[c].order > remaining) continue;
        kids.push_back(c);
        grow(remaining - trees[c].order, c);
        kids.pop_back();
      }
    };
    grow(n - 1, 0);
  }
  return trees;
}

// Φ_i(t) for every tree and stage i.
std::vector<std::vector<double>> elementary_weights(const Tableau& tab,
                                                   const std::vector<Tree>& trees) {
  std::vector<std::vector<double>> phi(trees.size(), std::vector<double>(tab.stages, 1.0));
  for (size_t t = 0; t < trees.size(); ++t)
    for (int c : trees[t].children)
      for (int i = 0; i < tab.stages; ++i) {
        double s = 0.0;
        for (int j = 0; j < tab.stages; ++j) s += tab.a[i][j] * phi[c][j];
        phi[t][i] *= s;
      }
  return phi;
}

// Largest |Σ w_i Φ_i(t) − θ^|t| / γ(t)| over the trees of exactly `order` vertices.
double order_defect(const Tableau& tab, const double* w, int order, double theta = 1.0) {
  const std::vector<Tree> trees = rooted_trees(order);
  const auto phi = elementary_weights(tab, trees);
  double worst = 0.0;
  for (size_t t = 0; t < trees.size(); ++t) {
    if (trees[t].order != order) continue;
    double s = 0.0;
    for (int i = 0; i < tab.stages; ++i) s += w[i] * phi[t][i];
    worst = std::fmax(worst, std::fabs(s - std::pow(theta, order) / trees[t].gamma));
  }
  return worst;
}

const Tableau* const kAll[] = {&kEuler, &kRK4, &kBS3, &kDP5};

}  // namespace

TEST_CASE("the generated rooted trees are the known ones", "[tableau]") {
  // 1, 1, 2, 4, 9, 20 trees of order 1…6 (OEIS A000081).
  const std::vector<Tree> trees = rooted_trees(6);
  int count[7] = {0};
  for (const Tree& t : trees) ++count[t.order];
  CHECK(count[1] == 1);
  CHECK(count[2] == 1);
  CHECK(count[3] == 2);
  CHECK(count[4] == 4);
  CHECK(count[5] == 9);
  CHECK(count[6] == 20);
  CHECK(trees[1].gamma == 2.0);  // the two-vertex tree: Σ b_i c_i = 1/2
}

TEST_CASE("each tableau is explicit, consistent and has exactly its stated order", "[tableau]") {
  for (const Tableau* tab : kAll) {
    INFO(tab->name);
    double bsum = 0.0;
    for (int i = 0; i < tab->stages; ++i) bsum += tab->b[i];
    CHECK(bsum == Approx(1.0).margin(1e-15));
    for (int i = 0; i < tab->stages; ++i) {
      double row = 0.0;
      for (int j = 0; j < kMaxStages; ++j) {
        if (j >= i) CHECK(tab->a[i][j] == 0.0);  // explicit: strictly lower triangular
        row += tab->a[i][j];
      }
      CHECK(row == Approx(tab->c[i]).margin(1e-15));
    }
    for (int p = 1; p <= tab->order; ++p) {
      INFO("order condition " << p);
      CHECK(order_defect(*tab, tab->b, p) < 1e-14);
    }
    // The stated order is not an underestimate: some condition of the next order fails.
    CHECK(order_defect(*tab, tab->b, tab->order + 1) > 1e-4);
    CHECK(&tableau_for(Method(tab == &kEuler ? 0 : tab == &kRK4 ? 1 : tab == &kBS3 ? 2 : 3)) ==
          tab);
  }
}

TEST_CASE("the embedded weights b − e have exactly the error order", "[tableau]") {
  for (const Tableau* tab : kAll) {
    INFO(tab->name);
    if (!tab->adaptive()) {
      for (int i = 0; i < kMaxStages; ++i) CHECK(tab->e[i] == 0.0);
      continue;
    }
    double bhat[kMaxStages];
    double esum = 0.0;
    for (int i = 0; i < kMaxStages; ++i) {
      bhat[i] = tab->b[i] - tab->e[i];
      esum += tab->e[i];
    }
    CHECK(std::fabs(esum) < 1e-15);  // the error estimate of a constant solution is zero
    for (int p = 1; p <= tab->error_order; ++p) {
      INFO("order condition " << p);
      CHECK(order_defect(*tab, bhat, p) < 1e-14);
    }
    CHECK(order_defect(*tab, bhat, tab->error_order + 1) > 1e-4);
    CHECK(tab->error_order == tab->order - 1);
  }
}

TEST_CASE("FSAL tableaux: the last stage is f at the new point", "[tableau]") {
  for (const Tableau* tab : kAll) {
    if (!tab->fsal) continue;
    INFO(tab->name);
    const int last = tab->stages - 1;
    CHECK(tab->c[last] == 1.0);
    CHECK(tab->b[last] == 0.0);
    for (int j = 0; j < last; ++j) CHECK(tab->a[last][j] == tab->b[j]);
  }
}

TEST_CASE("DP5's continuous extension has order 4 at every θ and joins the step's ends",
          "[tableau]") {
  const Tableau& tab = kDP5;
  REQUIRE(tab.n_dense == 4);
  // b_j(θ) = Σ_m dense[j][m] θ^(m+1): b_j(1) = b_j (the dense output ends at x1), b_j'(0) = δ_j0
  // (it starts with slope f(t, x)), and b_j'(1) = δ_j,last (it ends with slope f1 = k_last).
  for (int j = 0; j < tab.stages; ++j) {
    double at1 = 0.0, slope0 = tab.dense[j][0], slope1 = 0.0;
    for (int m = 0; m < kMaxDense; ++m) {
      at1 += tab.dense[j][m];
      slope1 += (m + 1) * tab.dense[j][m];
    }
    CHECK(at1 == Approx(tab.b[j]).margin(1e-14));
    CHECK(slope0 == (j == 0 ? 1.0 : 0.0));
    CHECK(slope1 == Approx(j == tab.stages - 1 ? 1.0 : 0.0).margin(1e-13));
  }
  for (double theta : {0.1, 0.37, 0.5, 0.8, 1.0}) {
    double w[kMaxStages];
    for (int j = 0; j < kMaxStages; ++j) {
      w[j] = 0.0;
      for (int m = kMaxDense - 1; m >= 0; --m) w[j] = (w[j] + tab.dense[j][m]) * theta;
    }
    INFO("theta " << theta);
    for (int p = 1; p <= 4; ++p) CHECK(order_defect(tab, w, p, theta) < 1e-13);
    if (theta < 1.0) CHECK(order_defect(tab, w, 5, theta) > 1e-6);
  }
}
