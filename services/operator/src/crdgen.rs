//! Prints the TradingCentre CustomResourceDefinition (YAML). `scripts/check-chart.sh` compares
//! it with the committed copies in `k8s/crds/` and `charts/jinfu/crds/`.

fn main() -> std::process::ExitCode {
    match jinfu_operator::crd_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("crdgen: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
