#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdResult};

use crate::error::ContractError;
use crate::msg::{ExecuteMsg, InstantiateMsg, OwnerResponse, QueryMsg};
use crate::state::OWNER;

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    let owner = match msg.owner {
        Some(o) => deps.api.addr_validate(&o)?,
        None => info.sender,
    };
    OWNER.save(deps.storage, &owner)?;
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("owner", owner))
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(deps: DepsMut, _env: Env, info: MessageInfo, msg: ExecuteMsg) -> Result<Response, ContractError> {
    match msg {
        ExecuteMsg::TransferOwnership { new_owner } => {
            if info.sender != OWNER.load(deps.storage)? {
                return Err(ContractError::Unauthorized {});
            }
            let new_owner = deps.api.addr_validate(&new_owner)?;
            OWNER.save(deps.storage, &new_owner)?;
            Ok(Response::new()
                .add_attribute("action", "transfer_ownership")
                .add_attribute("owner", new_owner))
        }
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Owner {} => to_json_binary(&OwnerResponse {
            owner: OWNER.load(deps.storage)?.into_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::from_json;
    use cosmwasm_std::testing::{message_info, mock_dependencies, mock_env};

    #[test]
    fn owner_defaults_to_sender_and_only_owner_transfers() {
        let mut deps = mock_dependencies();
        let alice = deps.api.addr_make("alice");
        let bob = deps.api.addr_make("bob");
        instantiate(
            deps.as_mut(),
            mock_env(),
            message_info(&alice, &[]),
            InstantiateMsg { owner: None },
        )
        .unwrap();

        let msg = ExecuteMsg::TransferOwnership {
            new_owner: bob.to_string(),
        };
        let err = execute(deps.as_mut(), mock_env(), message_info(&bob, &[]), msg.clone()).unwrap_err();
        assert_eq!(err, ContractError::Unauthorized {});
        let owner: OwnerResponse = from_json(query(deps.as_ref(), mock_env(), QueryMsg::Owner {}).unwrap()).unwrap();
        assert_eq!(owner.owner, alice.to_string(), "a refused transfer changes nothing");

        execute(deps.as_mut(), mock_env(), message_info(&alice, &[]), msg).unwrap();
        let owner: OwnerResponse = from_json(query(deps.as_ref(), mock_env(), QueryMsg::Owner {}).unwrap()).unwrap();
        assert_eq!(owner.owner, bob.to_string());
    }
}
