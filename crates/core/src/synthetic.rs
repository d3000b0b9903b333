//! `synthetic.promotion`: simulated shoppers with behaviour features, a randomised promotion,
//! and each customer's *true* promotion effect, so uplift models can be scored against ground
//! truth and the demo pipeline needs no files.

use crate::{Column, ColumnData, Frame, Result, Rng};
use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Normal, Poisson};

/// Most rows [`SyntheticPromotion::generate`] makes: 10 million (about 2 GB of columns).
pub const MAX_ROWS: usize = 10_000_000;
/// Most treatment arms besides control: 9, so that arm `a` (a coupon or discount of `10 a` %)
/// stays below 100 %.
pub const MAX_ARMS: usize = 9;

/// Settings of the synthetic promotion data set.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticPromotion {
    /// Number of customers.
    pub rows: usize,
    /// Seed; the same seed gives the same rows.
    pub seed: u64,
    /// Treatment arms besides control: 1 gives `coupon`; 2 gives `coupon_10` and `coupon_20`.
    pub arms: usize,
    /// Share of missing values injected into `age` and `pages_per_session`.
    pub missing_rate: f64,
    /// The price-sensitivity variant (`synthetic.price`): the arms are discount levels
    /// (`discount_10`, `discount_20`, ...), see [`SyntheticPromotion::generate_price`].
    pub price: bool,
}

impl Default for SyntheticPromotion {
    fn default() -> Self {
        SyntheticPromotion { rows: 5000, seed: 42, arms: 1, missing_rate: 0.03, price: false }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl SyntheticPromotion {
    /// An error unless `rows` is at most [`MAX_ROWS`] and `arms` at most [`MAX_ARMS`]: what a
    /// pipeline validates, checked again before anything is allocated.
    pub fn check_size(&self) -> Result<()> {
        if self.rows > MAX_ROWS {
            return Err(crate::Error::config(
                "data.rows",
                format!("{} is out of range: allowed up to {MAX_ROWS}", self.rows),
            ));
        }
        if self.arms > MAX_ARMS {
            return Err(crate::Error::config(
                "data.arms",
                format!("{} is out of range: allowed up to {MAX_ARMS}", self.arms),
            ));
        }
        Ok(())
    }

    /// Names of the treatment arms, control first.
    pub fn arm_names(&self) -> Vec<String> {
        let mut v = vec!["control".to_string()];
        if self.price {
            v.extend((1..=self.arms.max(1)).map(|a| format!("discount_{}", 10 * a)));
            return v;
        }
        if self.arms <= 1 {
            v.push("coupon".into());
        } else {
            v.extend((1..=self.arms).map(|a| format!("coupon_{}", 10 * a)));
        }
        v
    }

    /// Generate the frame. Columns: `customer_id`, behaviour features (`age`, `tenure_days`,
    /// `sessions_30d`, `pages_per_session`, `cart_adds_30d`, `purchases_90d`, `spend_90d`,
    /// `days_since_last_visit`, `device`, `region`, `newsletter`, `signup_date`), the randomised
    /// arm `promotion`, the outcomes `purchase` (bool) and `spend`, and the true effect on the
    /// purchase probability of each arm versus control (`true_effect` for one arm,
    /// `true_effect_<arm>` for several). Outcomes and true effects must be kept out of features.
    pub fn generate(&self) -> Result<Frame> {
        self.check_size()?;
        if self.price {
            return self.generate_price();
        }
        let mut rng = Rng::seed_from_u64(self.seed);
        let n = self.rows;
        let arms = self.arm_names();
        let normal = Normal::new(0.0, 1.0).expect("valid normal");
        let mut cols: Vec<(&str, Vec<f64>)> = [
            "customer_id",
            "age",
            "tenure_days",
            "sessions_30d",
            "pages_per_session",
            "cart_adds_30d",
            "purchases_90d",
            "spend_90d",
            "days_since_last_visit",
            "spend",
        ]
        .into_iter()
        .map(|c| (c, Vec::with_capacity(n)))
        .collect();
        let mut device = Vec::with_capacity(n);
        let mut region = Vec::with_capacity(n);
        let mut newsletter = Vec::with_capacity(n);
        let mut signup = Vec::with_capacity(n);
        let mut promotion = Vec::with_capacity(n);
        let mut purchase = Vec::with_capacity(n);
        let mut effects: Vec<Vec<f64>> = vec![Vec::with_capacity(n); arms.len() - 1];
        let regions = ["north", "south", "east", "west", "central"];
        for i in 0..n {
            let engagement: f64 = normal.sample(&mut rng);
            let price_sensitivity: f64 = normal.sample(&mut rng);
            let age = (40.0 + 12.0 * normal.sample(&mut rng) - 4.0 * price_sensitivity).clamp(18.0, 85.0).round();
            let tenure = Exp::new(1.0f64 / 400.0).expect("rate").sample(&mut rng).round();
            let sessions = Poisson::new((3.0 * (0.6 * engagement).exp()).max(0.05)).expect("lambda").sample(&mut rng);
            let pages = LogNormal::new(1.5 + 0.2 * engagement, 0.4).expect("lognormal").sample(&mut rng);
            let carts = Poisson::new((0.4 * sessions * sigmoid(0.5 * engagement + 0.5 * price_sensitivity)).max(0.01))
                .expect("l")
                .sample(&mut rng);
            let purchases = Poisson::new((1.2 * (0.7 * engagement - 0.5 * price_sensitivity).exp()).max(0.01))
                .expect("l")
                .sample(&mut rng);
            let aov = LogNormal::new(3.6 - 0.15 * price_sensitivity, 0.5).expect("lognormal");
            let spend90: f64 = (0..purchases as usize).map(|_| aov.sample(&mut rng)).sum();
            let recency = Exp::new(1.0f64 / (20.0 * (-0.5 * engagement).exp()))
                .expect("rate")
                .sample(&mut rng)
                .round()
                .min(365.0);
            let dev = {
                let u: f64 = rng.random();
                if u < 0.55 {
                    "mobile"
                } else if u < 0.9 {
                    "desktop"
                } else {
                    "tablet"
                }
            };
            let reg = regions[rng.random_range(0..regions.len())];
            let news = rng.random::<f64>() < sigmoid(0.3 * engagement - 0.4);
            let arm = rng.random_range(0..arms.len());
            // Base purchase propensity: engaged, recent, cart-adding customers buy.
            let base = -2.6 + 0.7 * engagement + 0.35 * (1.0 + purchases).ln() + 0.25 * carts.min(6.0) - 0.01 * recency
                + if dev == "desktop" { 0.15 } else { 0.0 };
            // Effect of a coupon: price-sensitive shoppers with carts respond; loyal heavy
            // buyers barely do (they would buy anyway), the disengaged do not notice.
            let responsiveness = 1.1 * sigmoid(1.5 * price_sensitivity) * sigmoid(carts - 0.5)
                - 0.25 * sigmoid(purchases - 3.0)
                + if news { 0.2 } else { 0.0 };
            let p0 = sigmoid(base);
            for (a, eff) in effects.iter_mut().enumerate() {
                let strength = 1.0 + 0.5 * a as f64;
                eff.push(sigmoid(base + strength * responsiveness) - p0);
            }
            let p = if arm == 0 { p0 } else { sigmoid(base + (1.0 + 0.5 * (arm - 1) as f64) * responsiveness) };
            let bought = rng.random::<f64>() < p;
            let discount = if arm == 0 { 0.0 } else { 0.1 * arm as f64 };
            let spend = if bought { aov.sample(&mut rng) * (1.0 - discount) } else { 0.0 };
            let miss = |rng: &mut Rng, v: f64| if rng.random::<f64>() < self.missing_rate { f64::NAN } else { v };
            let values = [
                (i + 1) as f64,
                miss(&mut rng, age),
                tenure,
                sessions,
                miss(&mut rng, (pages * 100.0).round() / 100.0),
                carts,
                purchases,
                (spend90 * 100.0).round() / 100.0,
                recency,
                (spend * 100.0).round() / 100.0,
            ];
            for (c, v) in cols.iter_mut().zip(values) {
                c.1.push(v);
            }
            device.push(Some(dev));
            region.push(Some(reg));
            newsletter.push(Some(news));
            signup.push(Some(1_577_836_800 + 86_400 * (1400.0 - tenure.min(1400.0)) as i64));
            promotion.push(Some(arms[arm].clone()));
            purchase.push(Some(bought));
        }
        let mut columns: Vec<Column> = Vec::new();
        let spend = cols.pop().expect("spend column");
        for (name, v) in cols {
            columns.push(Column { name: name.into(), data: ColumnData::Numeric(v) });
        }
        columns.push(Column { name: "device".into(), data: ColumnData::categorical_from(device) });
        columns.push(Column { name: "region".into(), data: ColumnData::categorical_from(region) });
        columns.push(Column { name: "newsletter".into(), data: ColumnData::Boolean(newsletter) });
        columns.push(Column { name: "signup_date".into(), data: ColumnData::Timestamp(signup) });
        columns.push(Column { name: "promotion".into(), data: ColumnData::categorical_from(promotion) });
        if effects.len() == 1 {
            columns.push(Column { name: "true_effect".into(), data: ColumnData::Numeric(effects.remove(0)) });
        } else {
            for (a, e) in effects.into_iter().enumerate() {
                columns.push(Column { name: format!("true_effect_{}", arms[a + 1]), data: ColumnData::Numeric(e) });
            }
        }
        columns.push(Column { name: "purchase".into(), data: ColumnData::Boolean(purchase) });
        columns.push(Column { name: spend.0.into(), data: ColumnData::Numeric(spend.1) });
        Frame::new(columns)
    }
    /// Generate the price-sensitivity variant: every customer is offered list price (`control`)
    /// or a discount of 10 %, 20 %, ... (`discount_10`, ...) at random, on a basket of list
    /// value [`PRICE_BASKET`]. A discount raises the purchase probability of price-sensitive
    /// shoppers (those who redeem coupons and add to carts) and barely moves loyal heavy buyers.
    ///
    /// Columns: `customer_id`, `age`, `tenure_days`, `sessions_30d`, `cart_adds_30d`,
    /// `purchases_90d`, `spend_90d`, `days_since_last_visit`, `coupon_redemptions_90d`, `device`,
    /// `newsletter`, the arm `promotion`, the outcomes `purchase` (bool) and `revenue` (price
    /// paid, 0 without a purchase), and each customer's true purchase probability under every
    /// arm, control included (`true_p_control`, `true_p_discount_10`, ...), so the true value
    /// of any pricing policy is known. Keep outcomes and true probabilities out of the features.
    pub fn generate_price(&self) -> Result<Frame> {
        self.check_size()?;
        let mut rng = Rng::seed_from_u64(self.seed ^ 0x0050_5249_4345);
        let n = self.rows;
        let arms = self.arm_names();
        let normal = Normal::new(0.0, 1.0).expect("valid normal");
        let names = [
            "customer_id",
            "age",
            "tenure_days",
            "sessions_30d",
            "cart_adds_30d",
            "purchases_90d",
            "spend_90d",
            "days_since_last_visit",
            "coupon_redemptions_90d",
            "revenue",
        ];
        let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(n); names.len()];
        let mut device = Vec::with_capacity(n);
        let mut newsletter = Vec::with_capacity(n);
        let mut promotion = Vec::with_capacity(n);
        let mut purchase = Vec::with_capacity(n);
        let mut truth: Vec<Vec<f64>> = vec![Vec::with_capacity(n); arms.len()];
        for i in 0..n {
            let engagement: f64 = normal.sample(&mut rng);
            let sensitivity: f64 = normal.sample(&mut rng);
            let age = (40.0 + 12.0 * normal.sample(&mut rng) - 4.0 * sensitivity).clamp(18.0, 85.0).round();
            let tenure = Exp::new(1.0f64 / 400.0).expect("rate").sample(&mut rng).round();
            let sessions = Poisson::new((3.0 * (0.6 * engagement).exp()).max(0.05)).expect("lambda").sample(&mut rng);
            let carts = Poisson::new((0.4 * sessions * sigmoid(0.5 * engagement + 0.5 * sensitivity)).max(0.01))
                .expect("l")
                .sample(&mut rng);
            let purchases = Poisson::new((1.2 * (0.7 * engagement - 0.3 * sensitivity).exp()).max(0.01))
                .expect("l")
                .sample(&mut rng);
            let aov = LogNormal::new(3.6 - 0.15 * sensitivity, 0.5).expect("lognormal");
            let spend90: f64 = (0..purchases as usize).map(|_| aov.sample(&mut rng)).sum();
            let recency = Exp::new(1.0f64 / (20.0 * (-0.5 * engagement).exp()))
                .expect("rate")
                .sample(&mut rng)
                .round()
                .min(365.0);
            let coupons = Poisson::new((0.8 * (0.9 * sensitivity).exp()).max(0.01)).expect("l").sample(&mut rng);
            let dev = if rng.random::<f64>() < 0.6 { "mobile" } else { "desktop" };
            let news = rng.random::<f64>() < sigmoid(0.3 * engagement - 0.4);
            let arm = rng.random_range(0..arms.len());
            let base = -2.2 + 0.6 * engagement + 0.3 * (1.0 + purchases).ln() + 0.2 * carts.min(6.0) - 0.01 * recency;
            // Logit gain per 10 % of discount: high for coupon redeemers with carts, none for
            // loyal heavy buyers; driven by what the shop observes, so a model can learn it.
            let response = 2.5 * sigmoid(2.0 * (coupons - 1.5)) * sigmoid(carts - 0.5) - 0.5 * sigmoid(purchases - 3.0)
                + if news { 0.2 } else { 0.0 };
            let probs: Vec<f64> = (0..arms.len()).map(|a| sigmoid(base + a as f64 * response)).collect();
            let bought = rng.random::<f64>() < probs[arm];
            let paid = if bought { PRICE_BASKET * (1.0 - 0.1 * arm as f64) } else { 0.0 };
            let values = [
                (i + 1) as f64,
                age,
                tenure,
                sessions,
                carts,
                purchases,
                (spend90 * 100.0).round() / 100.0,
                recency,
                coupons,
                paid,
            ];
            for (c, v) in cols.iter_mut().zip(values) {
                c.push(v);
            }
            for (t, p) in truth.iter_mut().zip(&probs) {
                t.push(*p);
            }
            device.push(Some(dev));
            newsletter.push(Some(news));
            promotion.push(Some(arms[arm].clone()));
            purchase.push(Some(bought));
        }
        let mut columns: Vec<Column> = Vec::new();
        let revenue = cols.pop().expect("revenue column");
        for (name, v) in names.iter().zip(cols) {
            columns.push(Column { name: (*name).into(), data: ColumnData::Numeric(v) });
        }
        columns.push(Column { name: "device".into(), data: ColumnData::categorical_from(device) });
        columns.push(Column { name: "newsletter".into(), data: ColumnData::Boolean(newsletter) });
        columns.push(Column { name: "promotion".into(), data: ColumnData::categorical_from(promotion) });
        for (a, t) in truth.into_iter().enumerate() {
            columns.push(Column { name: format!("true_p_{}", arms[a]), data: ColumnData::Numeric(t) });
        }
        columns.push(Column { name: "purchase".into(), data: ColumnData::Boolean(purchase) });
        columns.push(Column { name: "revenue".into(), data: ColumnData::Numeric(revenue) });
        Frame::new(columns)
    }
}

/// List value of the basket in the price variant: a purchase at discount `d` pays
/// `PRICE_BASKET * (1 - d)`.
pub const PRICE_BASKET: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_sizes_are_refused_before_allocating() {
        for (cfg, key) in [
            (SyntheticPromotion { rows: 10_000_000_000_000, ..Default::default() }, "data.rows"),
            (SyntheticPromotion { arms: 1_000_000, ..Default::default() }, "data.arms"),
            (SyntheticPromotion { arms: 1_000_000, price: true, ..Default::default() }, "data.arms"),
        ] {
            let e = cfg.generate().unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("out of range"), "{e}");
        }
        assert!(SyntheticPromotion { arms: MAX_ARMS, rows: 100, ..Default::default() }.generate().is_ok());
    }

    #[test]
    fn deterministic_and_plausible() {
        let cfg = SyntheticPromotion { rows: 4000, ..Default::default() };
        let a = cfg.generate().unwrap();
        // NaN marks missing values, so compare the printed form (NaN != NaN).
        assert_eq!(format!("{a:?}"), format!("{:?}", cfg.generate().unwrap()));
        assert_eq!(a.n_rows(), 4000);
        let ColumnData::Boolean(buy) = &a.column("purchase").unwrap().data else { panic!() };
        let rate = buy.iter().filter(|b| **b == Some(true)).count() as f64 / 4000.0;
        assert!((0.05..0.5).contains(&rate), "purchase rate {rate}");
        let ColumnData::Numeric(eff) = &a.column("true_effect").unwrap().data else { panic!() };
        let mean = eff.iter().sum::<f64>() / eff.len() as f64;
        assert!(mean > 0.01 && eff.iter().any(|&e| e < 0.0), "mean true effect {mean}");
        assert!(a.column("age").unwrap().data.missing_count() > 0);
    }

    #[test]
    fn price_variant_has_truth_per_arm_and_sensitive_shoppers_respond() {
        let cfg = SyntheticPromotion { rows: 3000, arms: 2, price: true, ..Default::default() };
        assert_eq!(cfg.arm_names(), ["control", "discount_10", "discount_20"]);
        let f = cfg.generate().unwrap();
        assert_eq!(format!("{f:?}"), format!("{:?}", cfg.generate().unwrap()));
        let num = |c: &str| match &f.column(c).unwrap().data {
            ColumnData::Numeric(v) => v.clone(),
            _ => panic!("{c} is not numeric"),
        };
        let (p0, p2, coupons) = (num("true_p_control"), num("true_p_discount_20"), num("coupon_redemptions_90d"));
        let lift = |keep: &dyn Fn(f64) -> bool| {
            let rows: Vec<usize> = (0..p0.len()).filter(|&i| keep(coupons[i])).collect();
            rows.iter().map(|&i| p2[i] - p0[i]).sum::<f64>() / rows.len() as f64
        };
        let (heavy, none) = (lift(&|c| c >= 3.0), lift(&|c| c == 0.0));
        assert!(heavy > none + 0.05, "coupon users lift {heavy}, others {none}");
        let ColumnData::Numeric(rev) = &f.column("revenue").unwrap().data else { panic!() };
        assert!(rev.iter().all(|&r| [0.0, 100.0, 90.0, 80.0].contains(&r)));
    }
}
